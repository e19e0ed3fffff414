using System.Globalization;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>One SQL statement of a commit: positional parameters $1..$n (PostgreSQL's form; SQLite binds them by name).</summary>
/// <param name="Conflict">Set when the statement must change a row: none changed means the whole commit is refused.</param>
public sealed record StoreStatement(string Sql, object?[] Args, Func<StoreConflictException>? Conflict = null);

/// <summary>
/// Every write's SQL, once, for both engines (issue: one store, one SQL): a batch of <see cref="StoreOp"/>s becomes
/// the statements to run in one transaction, in order, and the notes other instances are told of (PostgreSQL's
/// pg_notify; SQLite has no other instance). The two engines differ only in how they run the statements (SQLite one
/// after the other on its writer connection, PostgreSQL as one batch, one round trip) and in
/// <paramref name="leases"/>: a sweeper lease to fence with exists only where several instances share the store.
/// </summary>
public static class StorePlan
{
    public static (List<StoreStatement> Statements, List<string> Notes) Of(IReadOnlyList<StoreOp> ops, bool leases)
    {
        var statements = new List<StoreStatement>();
        var notes = new List<string>();
        foreach (var op in ops)
        {
            Add(op, leases, statements, notes);
        }

        return (statements, notes);
    }

    private static void Add(StoreOp op, bool leases, List<StoreStatement> s, List<string> notes)
    {
        switch (op)
        {
            case SaveReport r:
                s.Add(new("INSERT INTO nodes(name, first_seen) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [r.Node, r.FirstSeenMs]));
                const string upsert = """
                    INSERT INTO agents(node, kind, version, last_report, heartbeat_ms, state, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (node, kind) DO UPDATE SET version = excluded.version, last_report = excluded.last_report,
                        heartbeat_ms = excluded.heartbeat_ms, state = excluded.state, sent_at = excluded.sent_at
                    """;
                object?[] agent = [r.Node, (long)r.Kind, r.Version, r.LastReportMs, r.HeartbeatMs, r.State, r.SentAtMs];
                s.Add(r.Base is null
                    ? new($"{upsert} WHERE {StoreSql.AgentForward}", agent)
                    // Only over the state the report was decided against, and only forward in the agent's own order;
                    // another one (or none expected: no row matches MinValue), or a later report stored: a conflict.
                    : new($"{upsert} WHERE agents.last_report = $8 AND {StoreSql.AgentForward}", [.. agent, r.Base.LastReportMs ?? long.MinValue], () => StoreSql.Conflict(r)));
                foreach (var c in r.Checks)
                {
                    s.Add(new("INSERT INTO check_history(node, kind, name, state, message, at) VALUES ($1, $2, $3, $4, $5, $6)",
                        [r.Node, (long)r.Kind, c.Name, (long)c.State, c.Message, r.LastReportMs]));
                }

                foreach (var f in r.Resolved)
                {
                    s.Add(new("INSERT INTO finding_history(node, kind, finding, subject, message, first_seen, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        [r.Node, (long)r.Kind, f.Kind, f.Subject, f.Message, f.FirstSeenMs, r.LastReportMs]));
                }

                foreach (var e in r.Events)
                {
                    s.Add(new("INSERT INTO events(node, kind, body, at) VALUES ($1, $2, $3, $4)", [r.Node, (long)r.Kind, e.Body, e.AtMs]));
                }

                if (r.KeepEvents is { } keep)
                {
                    s.Add(new("DELETE FROM events WHERE node = $1 AND id NOT IN (SELECT id FROM events WHERE node = $1 ORDER BY at DESC, id DESC LIMIT $2)", [r.Node, (long)keep]));
                }

                notes.Add("n|" + r.Node);
                break;
            case ForgetNodes f:
                foreach (var name in f.Nodes)
                {
                    s.Add(new("DELETE FROM nodes WHERE name = $1", [name]));
                    notes.Add("n|" + name);
                }

                break;
            case SaveAck a:
                s.Add(new($"INSERT INTO acks({StoreSql.AckColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (node, kind, finding, subject) DO UPDATE SET {StoreSql.AckUpdate}",
                    [a.Node, (long)a.Kind, a.Finding, a.Subject, a.FirstSeenMs, (long)a.Severity, a.AtMs, a.UntilMs, a.By, a.Reason]));
                notes.Add("n|" + a.Node);
                break;
            case DeleteAck d:
                s.Add(d.BelowSeverity is { } below
                    ? new("DELETE FROM acks WHERE node = $1 AND kind = $2 AND finding = $3 AND subject = $4 AND severity < $5", [d.Node, (long)d.Kind, d.Finding, d.Subject, (long)below])
                    : new("DELETE FROM acks WHERE node = $1 AND kind = $2 AND finding = $3 AND subject = $4", [d.Node, (long)d.Kind, d.Finding, d.Subject]));
                notes.Add("n|" + d.Node);
                break;
            case DeleteHistoryBefore d:
                foreach (var (table, column) in new[] { ("check_history", "at"), ("finding_history", "resolved_at"), ("events", "at"), ("audit", "at"), ("acks", "until") })
                {
                    s.Add(new($"DELETE FROM {table} WHERE {column} < $1", [d.CutoffMs]));
                }

                if (leases)
                {
                    s.AddRange(ChangeLog.Compact(d.CutoffMs)); // several instances: their change log's tombstones too
                }

                break;
            case AddAudit a:
                s.Add(new("INSERT INTO audit(at, identity, action, result, detail) VALUES ($1, $2, $3, $4, $5)", [a.AtMs, a.Identity, a.Action, a.Result, a.Detail]));
                break;
            case SaveBuild b:
                // The update leaves command_id (a unique key) alone: PostgreSQL would lock the row FOR UPDATE to change
                // it, waiting for every transaction still inserting log lines of this build (their foreign key check
                // holds KEY SHARE). A token is set once: at the insert, or below for a row from before tokens.
                s.Add(new($"""
                    INSERT INTO builds(id, requested_at, body, command_id, rank) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (id) DO UPDATE SET body = excluded.body, rank = excluded.rank
                    WHERE {StoreSql.BuildWhere(b, "$6")}
                    """, b.ExpectedRank is { } expected ? [b.Id, b.RequestedAtMs, b.Body, b.Token, b.Rank, expected] : [b.Id, b.RequestedAtMs, b.Body, b.Token, b.Rank],
                    () => StoreSql.Conflict(b)));
                if (b.Token is not null)
                {
                    s.Add(new("UPDATE builds SET command_id = $2 WHERE id = $1 AND command_id IS NULL", [b.Id, b.Token]));
                }

                notes.Add("b|" + b.Id.ToString(CultureInfo.InvariantCulture));
                break;
            case DeleteBuilds d:
                foreach (var id in d.Ids)
                {
                    s.Add(new("DELETE FROM builds WHERE id = $1", [id]));
                    notes.Add("b|" + id.ToString(CultureInfo.InvariantCulture));
                }

                break;
            case AppendBuildLog l:
                foreach (var (seq, line) in l.Lines)
                {
                    s.Add(new("INSERT INTO build_log(build, seq, line) VALUES ($1, $2, $3) ON CONFLICT (build, seq) DO UPDATE SET line = excluded.line", [l.Build, seq, line]));
                }

                notes.Add("l|" + l.Build.ToString(CultureInfo.InvariantCulture));
                break;
            case SaveImageInventory i:
                ImageInventorySql.Save(i, s);
                break;
            case ForgetImageInventories f:
                ImageInventorySql.Forget(f.Repository, f.Digests, s);
                break;
            case LeaseFence f when leases:
                s.Add(new("UPDATE sweeper_lease SET expires_at = expires_at WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > clock_timestamp()", [f.Holder, f.Epoch],
                    () => new StoreConflictException($"the sweeper lease (epoch {f.Epoch}) expired or moved to another instance; nothing of this batch was stored")));
                break;
            case LeaseFence:
                break; // one instance: it always holds the lease
            case StoreBatch inner:
                foreach (var o in inner.Ops)
                {
                    Add(o, leases, s, notes);
                }

                break;
            default:
                throw new ArgumentException($"unknown store operation {op.GetType().Name}", nameof(op));
        }
    }
}
