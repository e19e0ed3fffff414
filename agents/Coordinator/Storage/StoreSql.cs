using System.Data.Common;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// What both engines do with the same SQL, over ADO.NET: the state load, build rows, log pages, row counts and the
/// export of a table. Parameters are written @name, which Npgsql and Microsoft.Data.Sqlite both take.
/// </summary>
internal static class StoreSql
{
    public const string BuildColumns = "id, body, command_id, rank";

    /// <summary>The columns of an acknowledgement, in <see cref="SaveAck"/>'s order.</summary>
    public const string AckColumns = "node, kind, finding, subject, first_seen, severity, at, until, acked_by, reason";

    /// <summary>An acknowledgement given again replaces the earlier one.</summary>
    public const string AckUpdate = "first_seen = excluded.first_seen, severity = excluded.severity, at = excluded.at, until = excluded.until, acked_by = excluded.acked_by, reason = excluded.reason";

    /// <summary>Runs <paramref name="sql"/> and hands each row to <paramref name="row"/>.</summary>
    public static void Each(DbConnection c, DbTransaction? tx, string sql, Action<DbDataReader> row, params (string Name, object Value)[] args)
    {
        using var cmd = Command(c, tx, sql, args);
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            row(r);
        }
    }

    /// <summary>Runs <paramref name="sql"/> for its effect; the rows it changed.</summary>
    public static int Exec(DbConnection c, DbTransaction? tx, string sql, params (string Name, object Value)[] args)
    {
        using var cmd = Command(c, tx, sql, args);
        return cmd.ExecuteNonQuery();
    }

    /// <summary>A command with named parameters (both engines take @name).</summary>
    private static DbCommand Command(DbConnection c, DbTransaction? tx, string sql, (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }

    /// <summary>
    /// Nodes, their agents, the last <paramref name="recentEvents"/> events and the event count of each; with
    /// <paramref name="nodeFilter"/> (a condition on the node's name such as "= ANY(@names)", its value in
    /// <paramref name="filterArg"/>) only those nodes, else every node and the builds too.
    /// </summary>
    public static StoredState State(DbConnection c, DbTransaction? tx, int recentEvents, string? nodeFilter = null, (string, object) filterArg = default)
    {
        var nodes = new List<(string, long)>();
        var agents = new List<StoredAgent>();
        var recent = new List<(string, byte[])>();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var builds = new List<StoredBuild>();
        (string, object)[] args = nodeFilter is null ? [] : [filterArg];
        string Where(string column) => nodeFilter is null ? string.Empty : $" WHERE {column} {nodeFilter}";
        Each(c, tx, "SELECT name, first_seen FROM nodes" + Where("name"), r => nodes.Add((r.GetString(0), r.GetInt64(1))), args);
        Each(c, tx, "SELECT node, kind, version, last_report, heartbeat_ms, state, sent_at FROM agents" + Where("node"),
            r => agents.Add(new StoredAgent(r.GetString(0), (int)r.GetInt64(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4), (byte[])r.GetValue(5), r.GetInt64(6))), args);
        Each(c, tx, $"""
            SELECT node, body FROM (
                SELECT node, body, at, id, ROW_NUMBER() OVER (PARTITION BY node ORDER BY at DESC, id DESC) AS rn FROM events{Where("node")}) e
            WHERE rn <= {recentEvents} ORDER BY node, at, id
            """, r => recent.Add((r.GetString(0), (byte[])r.GetValue(1))), args);
        Each(c, tx, "SELECT node, COUNT(*) FROM events" + Where("node") + " GROUP BY node", r => counts[r.GetString(0)] = (int)r.GetInt64(1), args);
        var acks = new List<SaveAck>();
        Each(c, tx, $"SELECT {AckColumns} FROM acks" + Where("node"),
            r => acks.Add(new SaveAck(r.GetString(0), (int)r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetInt64(4), (int)r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetString(8), r.GetString(9))), args);
        if (nodeFilter is null)
        {
            Each(c, tx, $"SELECT {BuildColumns} FROM builds ORDER BY id", r => builds.Add(Build(r)));
        }

        return new StoredState(nodes, agents, recent, counts, builds) { Acks = acks };
    }

    /// <summary>A report decided against a state the store no longer holds.</summary>
    public static StoreConflictException Conflict(SaveReport r) => new(
        $"the report of {r.Node} (agent {r.Kind}) was decided against {(r.Base?.LastReportMs is { } ms ? $"its state of {ms}" : "no stored state")}, and another instance has stored a different one since");

    /// <summary>A row of <see cref="BuildColumns"/>.</summary>
    public static StoredBuild Build(DbDataReader r) => new(r.GetInt64(0), (byte[])r.GetValue(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetInt64(3));

    /// <summary>A build write refused because the stored row is further along (or finished).</summary>
    public static StoreConflictException Conflict(SaveBuild b) => new(
        $"build {b.Id}: the store holds a later state than the one written (rank {b.Rank}); another instance moved it on first");

    /// <summary>When a stored build may be replaced (<see cref="SaveBuild"/>): only forward, never once finished.</summary>
    /// <remarks>An admin's stop request (the rank's lowest bit) is never cleared by a write that did not know of it
    /// (unless it finishes the build): such a write is refused and decided again against the stored row.</remarks>
    public const string BuildForward = "(builds.rank < excluded.rank OR (builds.rank = excluded.rank AND excluded.rank / 2 % 4 < 3)) "
        + "AND (excluded.rank % 2 >= builds.rank % 2 OR excluded.rank / 2 % 4 = 3)";

    /// <summary>The condition of a <see cref="SaveBuild"/>: only forward, or only over the rank it expects.</summary>
    public static string BuildWhere(SaveBuild b, string expectedParameter) =>
        b.ExpectedRank is null ? BuildForward : $"builds.rank = {expectedParameter} AND builds.rank / 2 % 4 < 3";

    /// <summary>The rank a claim writes: handed over in the row's generation, or (given back) queued in the next.</summary>
    public const string ClaimRank = "CASE WHEN @giveBack THEN (rank / 8 + 1) * 8 ELSE rank / 8 * 8 + 2 + rank % 2 END";

    /// <summary>When a stored agent row may be replaced: by a report the agent sent no earlier than the stored one.</summary>
    public const string AgentForward = "agents.sent_at <= excluded.sent_at";

    public static List<(long Seq, string Line)> LogPage(DbConnection c, long build, long after, int limit)
    {
        var page = new List<(long, string)>(Math.Min(limit, 4096));
        Each(c, null, "SELECT seq, line FROM build_log WHERE build = @b AND seq > @a ORDER BY seq LIMIT @n",
            r => page.Add((r.GetInt64(0), r.GetString(1))), ("@b", build), ("@a", after), ("@n", (long)limit));
        return page;
    }

    /// <summary>Rows per table of <see cref="StoreSchema.Tables"/>.</summary>
    public static Dictionary<string, long> Counts(DbConnection c, DbTransaction? tx)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (table, _) in StoreSchema.Tables)
        {
            Each(c, tx, $"SELECT COUNT(*) FROM {table}", r => counts[table] = r.GetInt64(0));
        }

        return counts;
    }

    /// <summary>An import's counts against the source's, inside its transaction: a difference rolls it back.</summary>
    public static void Verify(DbConnection c, DbTransaction tx, IReadOnlyDictionary<string, long>? expected)
    {
        if (expected is null)
        {
            return;
        }

        foreach (var (table, n) in Counts(c, tx))
        {
            if (n != expected.GetValueOrDefault(table))
            {
                throw new InvalidOperationException($"{table}: {n} rows imported, {expected.GetValueOrDefault(table)} expected; rolled back");
            }
        }
    }

    /// <summary>Every row of <paramref name="table"/>, its <see cref="StoreSchema.Tables"/> columns in order.</summary>
    public static IEnumerable<object?[]> Rows(DbConnection c, string table)
    {
        var columns = StoreSchema.Tables.Single(t => t.Table == table).Columns;
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {string.Join(", ", columns)} FROM {table} ORDER BY 1";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            var row = new object?[columns.Length];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = r.IsDBNull(i) ? null : r.GetValue(i);
            }

            yield return row;
        }
    }

    /// <summary>A store written by a newer coordinator is refused rather than damaged.</summary>
    public static void RefuseNewer(int version, int current)
    {
        if (version > current)
        {
            throw new InvalidOperationException(
                $"database schema version {version} is newer than this coordinator knows ({current}); refusing to use it");
        }
    }
}
