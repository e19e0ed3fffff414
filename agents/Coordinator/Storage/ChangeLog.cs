using System.Data.Common;
using System.Globalization;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>What <see cref="PostgresStore.LoadChanges"/> read: the changes since a mark, and the mark to read from next.</summary>
/// <param name="Mark">The snapshot's mark: what it does not hold was made by a transaction at or above it.</param>
/// <param name="Epoch">Which database history the mark belongs to (<see cref="ChangeLog.EpochQuery"/>).</param>
/// <param name="NodeNames">The nodes changed (those gone are absent from <paramref name="Nodes"/>).</param>
/// <param name="Nodes">The rows of the nodes changed, as the snapshot holds them.</param>
/// <param name="Builds">The builds changed, in the order of their last writers' transaction ids.</param>
/// <param name="Logs">The builds whose log lines changed.</param>
public sealed record StoreChanges(long Mark, string Epoch, IReadOnlyList<string> NodeNames, StoredState Nodes, IReadOnlyList<long> Builds, IReadOnlyList<long> Logs);

/// <summary>A mark and the database history it belongs to.</summary>
public readonly record struct StoreMark(long Xmin, string Epoch);

/// <summary>
/// PostgreSQL's change log (issue 28): a row per thing a commit changed — a node ("n", its name), a build ("b", its id),
/// a build's log ("l", its id) — with the transaction id of its last writer, written in the commit that changed it.
/// A mark is the oldest transaction id a snapshot saw still running (<c>pg_snapshot_xmin</c>): every transaction below
/// it had ended when the snapshot was taken, so everything a snapshot does not hold was written by a transaction at or
/// above its mark, and the rows at or above a mark name everything that may have changed since. Rows are written in the
/// same transactions as the changes (a thing's row is locked by its writer, so its last writer is also the one whose
/// change is in it). A row of a thing that is gone stays as its tombstone (a listener that was away must hear of the
/// deletion) until the sweeper compacts tombstones older than the history kept; the highest transaction id compacted is
/// kept, and a mark at or below it can no longer be read from incrementally.
/// </summary>
/// <remarks>
/// Transaction ids are only unique within one history of the database: after a crash PostgreSQL may hand out again ids
/// whose commit or abort records were never flushed, and a promoted replica those it never received. So a mark is
/// taken by a transaction that writes (<see cref="MarkStatement"/>: its commit flushes every record before it, and
/// recovery then starts above it), and belongs to an epoch — the cluster's system identifier and timeline; a mark of
/// another epoch is not read from. Instances of a version before the change log write no change rows: while one is
/// connected (its sessions' application_name is the old <see cref="LegacyApplicationName"/>) no mark is read from.
/// </remarks>
public static class ChangeLog
{
    /// <summary>PostgreSQL's migration 9 (as first committed; never edit: <see cref="MarksMigration"/> came after it).</summary>
    public const string Migration = """
        CREATE TABLE changes (
            kind  TEXT NOT NULL,
            key   TEXT NOT NULL,
            xid   BIGINT NOT NULL,
            at    BIGINT NOT NULL,
            PRIMARY KEY (kind, key)
        );
        CREATE TABLE changes_compacted (
            id     INT PRIMARY KEY CHECK (id = 1),
            below  BIGINT NOT NULL
        );
        INSERT INTO changes_compacted(id, below) VALUES (1, 0);
        """;

    /// <summary>PostgreSQL's migration 10: the listeners' marks, and change rows updated in place (pages half empty).</summary>
    public const string MarksMigration = """
        CREATE TABLE IF NOT EXISTS change_marks (
            instance  TEXT PRIMARY KEY,
            mark      BIGINT NOT NULL,
            at        BIGINT NOT NULL
        );
        ALTER TABLE changes SET (fillfactor = 50);
        """;

    /// <summary>The application_name of every session of a coordinator before the change log (pool and listener).</summary>
    public const string LegacyApplicationName = "toolforge-coordinator";

    /// <summary>
    /// A commit's record of its changes ($1 the kinds, $2 the keys, arrays), in the commit's own transaction, one
    /// statement, in key order: two commits naming the same things lock their rows in the same order (no deadlock).
    /// </summary>
    /// <remarks>No index on xid, and pages half empty (fillfactor 50): the row is then updated in place (HOT) on every
    /// report; reading since a mark scans one row per node and build, which costs less than an index kept up on the
    /// ingest path.</remarks>
    public const string Record = """
        INSERT INTO changes(kind, key, xid, at)
        SELECT u.kind, u.key, pg_current_xact_id()::text::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
        FROM unnest($1::text[], $2::text[]) AS u(kind, key) ORDER BY u.kind, u.key
        ON CONFLICT (kind, key) DO UPDATE SET xid = excluded.xid, at = excluded.at
        """;

    /// <summary>The current snapshot's mark (in a repeatable-read transaction, run first: it takes the snapshot).</summary>
    public const string MarkQuery = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

    /// <summary>
    /// The database history marks belong to: the cluster's system identifier, its current timeline and the database's
    /// oid (a database dropped and restored from a dump is another one).
    /// </summary>
    public const string EpochQuery = """
        SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8)
            || '/' || (SELECT oid FROM pg_database WHERE datname = current_database())::text
        """;

    /// <summary>
    /// The listener's mark, sent to itself ($1 its session's channel) by a transaction that writes ($2 the instance):
    /// the mark of this statement's snapshot, kept in change_marks (for admins: each instance's last mark and when).
    /// </summary>
    public const string MarkStatement = """
        WITH m AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS mark),
             w AS (INSERT INTO change_marks(instance, mark, at) SELECT $2, m.mark, (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM m
                   ON CONFLICT (instance) DO UPDATE SET mark = excluded.mark, at = excluded.at)
        SELECT pg_notify($1, (SELECT mark FROM m)::text)
        """;

    /// <summary>
    /// Tombstones older than <c>$1</c> (ms) compacted away, the highest transaction id among them kept: one statement per
    /// kind (a build's key is cast to a number only among builds' rows).
    /// </summary>
    public static IEnumerable<StoreStatement> Compact(long cutoffMs)
    {
        foreach (var (kinds, exists) in new[]
        {
            ("'n'", "SELECT 1 FROM nodes n WHERE n.name = c.key"),
            ("'b', 'l'", "SELECT 1 FROM builds b WHERE b.id = c.key::bigint"),
        })
        {
            yield return new StoreStatement($"""
                WITH gone AS (DELETE FROM changes c WHERE c.kind IN ({kinds}) AND c.at < $1 AND NOT EXISTS ({exists}) RETURNING c.xid)
                UPDATE changes_compacted SET below = GREATEST(below, (SELECT COALESCE(MAX(xid), 0) FROM gone)) WHERE id = 1
                """, [cutoffMs]);
        }
    }

    /// <summary>
    /// The mark of the transaction's snapshot and its epoch (run first in a repeatable-read transaction). An epoch that
    /// cannot be read (a role refused the control functions, a server in recovery) is one no other mark shares: the
    /// changes since it are then never read, only the whole store.
    /// </summary>
    public static StoreMark Mark(DbConnection c, DbTransaction? tx)
    {
        long mark = 0;
        StoreSql.Each(c, tx, MarkQuery, r => mark = r.GetInt64(0));
        return new StoreMark(mark, Epoch(c, tx));
    }

    /// <summary>Whether an epoch is one <see cref="Epoch"/> could not read ("unknown …": its marks never count).</summary>
    public static bool IsUnknown(string epoch) => epoch.StartsWith("unknown", StringComparison.Ordinal);

    /// <summary>The epoch (<see cref="EpochQuery"/>), or "unknown …: why" (never equal to another).</summary>
    public static string Epoch(DbConnection c, DbTransaction? tx)
    {
        // In a savepoint: a refusal here must not end the transaction the mark's reads go on in.
        if (tx is not null)
        {
            StoreSql.Exec(c, tx, "SAVEPOINT epoch");
        }

        try
        {
            var epoch = string.Empty;
            StoreSql.Each(c, tx, EpochQuery, r => epoch = r.GetString(0));
            return epoch;
        }
        catch (Npgsql.PostgresException ex) when (ex.SqlState is "42501" or "55000" or "XX000" or "42883" or "0A000")
        {
            if (tx is not null)
            {
                StoreSql.Exec(c, tx, "ROLLBACK TO SAVEPOINT epoch");
            }

            return $"unknown {Guid.NewGuid():N}: {ex.SqlState} {ex.MessageText}";
        }
    }

    /// <summary>
    /// What changed at or above <paramref name="since"/>, or why that cannot be read (then only the whole store can):
    /// another epoch, changes compacted away, an instance of an earlier version connected, or more than
    /// <paramref name="maxNodes"/> nodes changed (reading them one list at a time would cost more than the whole).
    /// </summary>
    public static (List<string> Nodes, List<long> Builds, List<long> Logs)? Since(DbConnection c, DbTransaction tx, StoreMark now, StoreMark since, int maxNodes, out string? whole)
    {
        whole = null;
        if (now.Epoch != since.Epoch)
        {
            var unknown = new[] { now.Epoch, since.Epoch }.FirstOrDefault(IsUnknown);
            whole = unknown is not null
                ? $"which database history the mark belongs to cannot be read ({unknown})"
                : $"the database is another history than the one the last mark came from ({since.Epoch}, now {now.Epoch}: a replica promoted, or restored)";
            return null;
        }

        if (now.Xmin < since.Xmin)
        {
            whole = $"the database's transaction ids went back ({since.Xmin} before, {now.Xmin} now)";
            return null;
        }

        long below = long.MaxValue;
        StoreSql.Each(c, tx, "SELECT below FROM changes_compacted WHERE id = 1", r => below = r.GetInt64(0));
        if (since.Xmin <= below)
        {
            whole = "the changes since the last one taken in here are no longer kept (compacted by the sweeper)";
            return null;
        }

        long legacy = 0;
        StoreSql.Each(c, tx, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = @n",
            r => legacy = r.GetInt64(0), ("@n", LegacyApplicationName));
        if (legacy > 0)
        {
            whole = $"{legacy} sessions of a coordinator of an earlier version are connected (application_name {LegacyApplicationName}): their commits write no change rows";
            return null;
        }

        var nodes = new List<string>();
        var builds = new List<long>();
        var logs = new List<long>();
        StoreSql.Each(c, tx, "SELECT kind, key FROM changes WHERE xid >= @s ORDER BY xid", r =>
        {
            var key = r.GetString(1);
            switch (r.GetString(0))
            {
                case "n":
                    nodes.Add(key);
                    break;
                case "b" when long.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id):
                    builds.Add(id);
                    break;
                case "l" when long.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id):
                    logs.Add(id);
                    break;
                default:
                    break; // a kind a later version writes: its own listener reads it
            }
        }, ("@s", since.Xmin));
        if (nodes.Count > maxNodes)
        {
            whole = $"{nodes.Count} nodes changed since the last mark, more than {maxNodes} (reading them by name would cost more than the whole store)";
            return null;
        }

        return (nodes, builds, logs);
    }
}
