using System.Data.Common;
using System.Globalization;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>What <see cref="PostgresStore.LoadChanges"/> read: the changes since a mark, and the mark to read from next.</summary>
/// <param name="Mark">The snapshot's mark: what it does not hold was made by a transaction at or above it.</param>
/// <param name="NodeNames">The nodes changed (those gone are absent from <paramref name="Nodes"/>).</param>
/// <param name="Nodes">The rows of the nodes changed, as the snapshot holds them.</param>
/// <param name="Builds">The builds changed, in the order of their last writers' transaction ids.</param>
/// <param name="Logs">The builds whose log lines changed.</param>
public sealed record StoreChanges(long Mark, IReadOnlyList<string> NodeNames, StoredState Nodes, IReadOnlyList<long> Builds, IReadOnlyList<long> Logs);

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
public static class ChangeLog
{
    /// <summary>PostgreSQL's migration 9.</summary>
    public const string Migration = """
        CREATE TABLE changes (
            kind  TEXT NOT NULL,
            key   TEXT NOT NULL,
            xid   BIGINT NOT NULL,
            at    BIGINT NOT NULL,
            PRIMARY KEY (kind, key)
        ) WITH (fillfactor = 50);
        CREATE TABLE changes_compacted (
            id     INT PRIMARY KEY CHECK (id = 1),
            below  BIGINT NOT NULL
        );
        INSERT INTO changes_compacted(id, below) VALUES (1, 0);
        """;

    /// <summary>A commit's record of a change ($1 the kind, $2 the key), in the commit's own transaction.</summary>
    /// <remarks>No index on xid, and pages half empty (fillfactor 50): the row is then updated in place (HOT) on every
    /// report; reading since a mark scans one row per node and build, which costs less than an index kept up on the
    /// ingest path.</remarks>
    public const string Record = """
        INSERT INTO changes(kind, key, xid, at) VALUES ($1, $2, pg_current_xact_id()::text::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
        ON CONFLICT (kind, key) DO UPDATE SET xid = excluded.xid, at = excluded.at
        """;

    /// <summary>The current snapshot's mark (in a repeatable-read transaction, run first: it takes the snapshot).</summary>
    public const string MarkQuery = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

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

    public static long Mark(DbConnection c, DbTransaction? tx)
    {
        long mark = 0;
        StoreSql.Each(c, tx, MarkQuery, r => mark = r.GetInt64(0));
        return mark;
    }

    /// <summary>What changed at or above <paramref name="since"/>; null when that may have been compacted away.</summary>
    public static (List<string> Nodes, List<long> Builds, List<long> Logs)? Since(DbConnection c, DbTransaction tx, long since)
    {
        long below = long.MaxValue;
        StoreSql.Each(c, tx, "SELECT below FROM changes_compacted WHERE id = 1", r => below = r.GetInt64(0));
        if (since <= below)
        {
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
        }, ("@s", since));
        return (nodes, builds, logs);
    }
}
