using System.Data.Common;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>A remediation lease as stored: one per node of a pool while it is between cordon and healthy uncordon.</summary>
public sealed record RemediationLeaseRow(string Node, string Incident, string Step, long Token, long AcquiredMs, long RenewedMs, long ExpiresMs);

/// <summary>A pool as stored: the last fencing token handed out, when a lease was last taken or ended, its leases.</summary>
public sealed record RemediationPoolRow(string Pool, long LastToken, long LastChangeMs, IReadOnlyList<RemediationLeaseRow> Leases);

/// <summary>What a decision on a pool writes, in the transaction that read it.</summary>
public sealed record RemediationPoolWrite(long LastToken, long LastChangeMs, IReadOnlyList<string> DeleteNodes, RemediationLeaseRow? Upsert);

/// <summary>
/// The SQL of remediation pacing, once for both engines: the pool's row read (with <c>FOR UPDATE</c> on PostgreSQL,
/// where instances share it; SQLite's <c>BEGIN IMMEDIATE</c> already holds the file) and written in one transaction.
/// </summary>
internal static class RemediationSql
{
    public const string Migration = """
        CREATE TABLE remediation_pools (
            pool        TEXT PRIMARY KEY,
            last_token  BIGINT NOT NULL,
            last_change BIGINT NOT NULL
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
        long token = 0, change = 0;
        StoreSql.Each(c, tx, $"SELECT last_token, last_change FROM remediation_pools WHERE pool = @p{(forUpdate ? " FOR UPDATE" : string.Empty)}",
            r => (token, change) = (r.GetInt64(0), r.GetInt64(1)), ("@p", pool));
        var (result, write) = decide(new RemediationPoolRow(pool, token, change, Leases(c, tx, pool)));
        if (write is not null)
        {
            Exec(c, tx, "UPDATE remediation_pools SET last_token = @t, last_change = @c WHERE pool = @p", ("@t", write.LastToken), ("@c", write.LastChangeMs), ("@p", pool));
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
        }

        tx.Commit();
        return result;
    }

    /// <summary>Every pool that has been used, with its leases (expired ones included: the reader judges).</summary>
    public static List<RemediationPoolRow> Pools(DbConnection c, DbTransaction? tx)
    {
        var pools = new List<(string Pool, long Token, long Change)>();
        StoreSql.Each(c, tx, "SELECT pool, last_token, last_change FROM remediation_pools ORDER BY pool", r => pools.Add((r.GetString(0), r.GetInt64(1), r.GetInt64(2))));
        return pools.Select(p => new RemediationPoolRow(p.Pool, p.Token, p.Change, Leases(c, tx, p.Pool))).ToList();
    }

    private static List<RemediationLeaseRow> Leases(DbConnection c, DbTransaction? tx, string pool)
    {
        var leases = new List<RemediationLeaseRow>();
        StoreSql.Each(c, tx, "SELECT node, incident, step, token, acquired, renewed, expires FROM remediation_leases WHERE pool = @p ORDER BY node",
            r => leases.Add(new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6))), ("@p", pool));
        return leases;
    }

    private static void Exec(DbConnection c, DbTransaction tx, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value;
            cmd.Parameters.Add(p);
        }

        cmd.ExecuteNonQuery();
    }
}
