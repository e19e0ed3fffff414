using System.Data.Common;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>A remediation lease as stored: one per node of a pool while it is between cordon and healthy uncordon.</summary>
public sealed record RemediationLeaseRow(string Node, string Incident, string Step, long Token, long AcquiredMs, long RenewedMs, long ExpiresMs);

/// <summary>An admin's hold on a node of a pool: <c>paused</c> (no new lease) or <c>cancelled</c> (its incident ends).</summary>
public sealed record RemediationHoldRow(string Node, string Kind, string Incident, string By, string Reason, long AtMs);

/// <summary>A node that asked for a lease (a candidate for remediation) within the pool's breaker window.</summary>
public sealed record RemediationCandidateRow(string Node, long AtMs);

/// <summary>
/// A pool as stored: the last fencing token handed out, when a lease was last taken or ended, its leases, and what
/// admins and the storm breaker decided (a tripped breaker, a pause, holds on nodes, the recent candidates).
/// </summary>
public sealed record RemediationPoolRow(string Pool, long LastToken, long LastChangeMs, IReadOnlyList<RemediationLeaseRow> Leases)
{
    public long BreakerAtMs { get; init; }

    public string BreakerReason { get; init; } = string.Empty;

    public string PausedBy { get; init; } = string.Empty;

    public string PausedReason { get; init; } = string.Empty;

    public long PausedAtMs { get; init; }

    public IReadOnlyList<RemediationCandidateRow> Candidates { get; init; } = [];

    public IReadOnlyList<RemediationHoldRow> Holds { get; init; } = [];
}

/// <summary>
/// What a decision on a pool writes, in the transaction that read it: the pool's own state after it
/// (<see cref="After"/>: its row, candidates and holds; its leases are not read from there), the leases deleted and the
/// one inserted or replaced, and other writes that must commit with it (an admin's audit row).
/// </summary>
public sealed record RemediationPoolWrite(RemediationPoolRow After, IReadOnlyList<string> DeleteNodes, RemediationLeaseRow? Upsert)
{
    public IReadOnlyList<StoreOp> Also { get; init; } = [];
}

/// <summary>
/// The SQL of remediation pacing, once for both engines: the pool's row read (with <c>FOR UPDATE</c> on PostgreSQL,
/// where instances share it; SQLite's <c>BEGIN IMMEDIATE</c> already holds the file) and written in one transaction.
/// </summary>
internal static partial class RemediationSql
{
    [System.Text.RegularExpressions.GeneratedRegex(@"\$(\d+)")]
    private static partial System.Text.RegularExpressions.Regex Positional();

    public const string Migration = """
        CREATE TABLE remediation_pools (
            pool            TEXT PRIMARY KEY,
            last_token      BIGINT NOT NULL,
            last_change     BIGINT NOT NULL,
            breaker_at      BIGINT NOT NULL DEFAULT 0,
            breaker_reason  TEXT NOT NULL DEFAULT '',
            paused_by       TEXT NOT NULL DEFAULT '',
            paused_reason   TEXT NOT NULL DEFAULT '',
            paused_at       BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE remediation_candidates (
            pool        TEXT NOT NULL,
            node        TEXT NOT NULL,
            at          BIGINT NOT NULL,
            PRIMARY KEY (pool, node)
        );
        CREATE TABLE remediation_holds (
            pool        TEXT NOT NULL,
            node        TEXT NOT NULL,
            kind        TEXT NOT NULL,
            incident    TEXT NOT NULL,
            by_identity TEXT NOT NULL,
            reason      TEXT NOT NULL,
            at          BIGINT NOT NULL,
            PRIMARY KEY (pool, node, kind, incident)
        );
        CREATE TABLE remediation_leases (
            pool        TEXT NOT NULL,
            node        TEXT NOT NULL,
            incident    TEXT NOT NULL,
            step        TEXT NOT NULL,
            token       BIGINT NOT NULL,
            acquired    BIGINT NOT NULL,
            renewed     BIGINT NOT NULL,
            expires     BIGINT NOT NULL,
            PRIMARY KEY (pool, node)
        );
        """;

    /// <summary>Reads the pool (creating its row at first use), lets <paramref name="decide"/> choose, writes that.</summary>
    public static T Decide<T>(DbConnection c, DbTransaction tx, string pool, bool forUpdate, Func<RemediationPoolRow, (T Result, RemediationPoolWrite? Write)> decide)
    {
        Exec(c, tx, "INSERT INTO remediation_pools(pool, last_token, last_change) VALUES (@p, 0, 0) ON CONFLICT (pool) DO NOTHING", ("@p", pool));
        var row = Read(c, tx, pool, forUpdate)!;
        var (result, write) = decide(row);
        if (write is not null)
        {
            var a = write.After;
            Exec(c, tx, """
                UPDATE remediation_pools SET last_token = @t, last_change = @c, breaker_at = @ba, breaker_reason = @br,
                    paused_by = @pb, paused_reason = @pr, paused_at = @pa WHERE pool = @p
                """, ("@t", a.LastToken), ("@c", a.LastChangeMs), ("@ba", a.BreakerAtMs), ("@br", a.BreakerReason),
                ("@pb", a.PausedBy), ("@pr", a.PausedReason), ("@pa", a.PausedAtMs), ("@p", pool));
            foreach (var node in write.DeleteNodes)
            {
                Exec(c, tx, "DELETE FROM remediation_leases WHERE pool = @p AND node = @n", ("@p", pool), ("@n", node));
            }

            if (write.Upsert is { } l)
            {
                Exec(c, tx, """
                    INSERT INTO remediation_leases(pool, node, incident, step, token, acquired, renewed, expires) VALUES (@p, @n, @i, @s, @t, @a, @r, @e)
                    ON CONFLICT (pool, node) DO UPDATE SET incident = excluded.incident, step = excluded.step, token = excluded.token,
                        acquired = excluded.acquired, renewed = excluded.renewed, expires = excluded.expires
                    """, ("@p", pool), ("@n", l.Node), ("@i", l.Incident), ("@s", l.Step), ("@t", l.Token), ("@a", l.AcquiredMs), ("@r", l.RenewedMs), ("@e", l.ExpiresMs));
            }

            if (!a.Candidates.SequenceEqual(row.Candidates))
            {
                Exec(c, tx, "DELETE FROM remediation_candidates WHERE pool = @p", ("@p", pool));
                foreach (var x in a.Candidates)
                {
                    Exec(c, tx, "INSERT INTO remediation_candidates(pool, node, at) VALUES (@p, @n, @a)", ("@p", pool), ("@n", x.Node), ("@a", x.AtMs));
                }
            }

            if (!a.Holds.SequenceEqual(row.Holds))
            {
                Exec(c, tx, "DELETE FROM remediation_holds WHERE pool = @p", ("@p", pool));
                foreach (var h in a.Holds)
                {
                    Exec(c, tx, "INSERT INTO remediation_holds(pool, node, kind, incident, by_identity, reason, at) VALUES (@p, @n, @k, @i, @b, @r, @a)",
                        ("@p", pool), ("@n", h.Node), ("@k", h.Kind), ("@i", h.Incident), ("@b", h.By), ("@r", h.Reason), ("@a", h.AtMs));
                }
            }

            // Whatever else commits with it (an admin's audit row): each operation's SQL as StorePlan writes it.
            foreach (var statement in StorePlan.Of(write.Also, leases: false).Statements)
            {
                Exec(c, tx, Positional().Replace(statement.Sql, "@p$1"), [.. statement.Args.Select((v, i) => ("@p" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), v ?? DBNull.Value))]);
            }
        }

        tx.Commit();
        return result;
    }

    /// <summary>Every pool that has been used, with its leases (expired ones included: the reader judges), candidates and holds.</summary>
    public static List<RemediationPoolRow> Pools(DbConnection c, DbTransaction? tx)
    {
        var names = new List<string>();
        StoreSql.Each(c, tx, "SELECT pool FROM remediation_pools ORDER BY pool", r => names.Add(r.GetString(0)));
        return names.Select(n => Read(c, tx, n, forUpdate: false)!).ToList();
    }

    private static RemediationPoolRow? Read(DbConnection c, DbTransaction? tx, string pool, bool forUpdate)
    {
        RemediationPoolRow? row = null;
        StoreSql.Each(c, tx, $"SELECT last_token, last_change, breaker_at, breaker_reason, paused_by, paused_reason, paused_at FROM remediation_pools WHERE pool = @p{(forUpdate ? " FOR UPDATE" : string.Empty)}",
            r => row = new RemediationPoolRow(pool, r.GetInt64(0), r.GetInt64(1), [])
            {
                BreakerAtMs = r.GetInt64(2), BreakerReason = r.GetString(3), PausedBy = r.GetString(4), PausedReason = r.GetString(5), PausedAtMs = r.GetInt64(6),
            }, ("@p", pool));
        if (row is null)
        {
            return null;
        }

        var leases = new List<RemediationLeaseRow>();
        StoreSql.Each(c, tx, "SELECT node, incident, step, token, acquired, renewed, expires FROM remediation_leases WHERE pool = @p ORDER BY node",
            r => leases.Add(new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6))), ("@p", pool));
        var candidates = new List<RemediationCandidateRow>();
        StoreSql.Each(c, tx, "SELECT node, at FROM remediation_candidates WHERE pool = @p ORDER BY node", r => candidates.Add(new(r.GetString(0), r.GetInt64(1))), ("@p", pool));
        var holds = new List<RemediationHoldRow>();
        StoreSql.Each(c, tx, "SELECT node, kind, incident, by_identity, reason, at FROM remediation_holds WHERE pool = @p ORDER BY node, kind",
            r => holds.Add(new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5))), ("@p", pool));
        return row with { Leases = leases, Candidates = candidates, Holds = holds };
    }

    private static void Exec(DbConnection c, DbTransaction tx, string sql, params (string Name, object Value)[] args) => StoreSql.Exec(c, tx, sql, args);
}
