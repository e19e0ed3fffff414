using Microsoft.Data.Sqlite;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// The default engine: one SQLite file (WAL synced at every commit, foreign keys), versioned migrations recorded in PRAGMA user_version. A
/// migration runs once, in a transaction; a database newer than this binary is refused rather than damaged. One
/// connection writes (the coordinator's single writer); reads of build logs open their own read-only connections.
/// </summary>
public sealed class SqliteStore : IStoreEngine
{
    /// <summary>Migration N brings the schema from version N-1 to N. Append only; never edit a released one.</summary>
    internal static readonly string[] Migrations =
    [
        // 1: current state per (node, agent), history, builds, audit.
        """
        CREATE TABLE nodes (
            name        TEXT PRIMARY KEY,
            first_seen  INTEGER NOT NULL
        );
        CREATE TABLE agents (
            node         TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
            kind         INTEGER NOT NULL,
            version      TEXT NOT NULL,
            last_report  INTEGER NOT NULL,
            heartbeat_ms INTEGER NOT NULL,
            state        BLOB NOT NULL,          -- protobuf AgentStateRecord: checks and findings
            PRIMARY KEY (node, kind)
        );
        CREATE TABLE check_history (
            id       INTEGER PRIMARY KEY,
            node     TEXT NOT NULL,
            kind     INTEGER NOT NULL,
            name     TEXT NOT NULL,
            state    INTEGER NOT NULL,
            message  TEXT NOT NULL,
            at       INTEGER NOT NULL
        );
        CREATE INDEX check_history_at ON check_history(at);
        CREATE INDEX check_history_node ON check_history(node, at);
        CREATE TABLE finding_history (
            id          INTEGER PRIMARY KEY,
            node        TEXT NOT NULL,
            kind        INTEGER NOT NULL,
            finding     TEXT NOT NULL,
            subject     TEXT NOT NULL,
            message     TEXT NOT NULL,
            first_seen  INTEGER NOT NULL,
            resolved_at INTEGER NOT NULL
        );
        CREATE INDEX finding_history_resolved ON finding_history(resolved_at);
        CREATE TABLE events (
            id       INTEGER PRIMARY KEY,
            node     TEXT NOT NULL,
            kind     INTEGER NOT NULL,
            body     BLOB NOT NULL,              -- protobuf AgentEvent
            at       INTEGER NOT NULL
        );
        CREATE INDEX events_node ON events(node, at);
        CREATE INDEX events_at ON events(at);
        CREATE TABLE builds (
            id            INTEGER PRIMARY KEY,
            requested_at  INTEGER NOT NULL,
            body          BLOB NOT NULL          -- protobuf Build
        );
        CREATE TABLE build_log (
            build  INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
            seq    INTEGER NOT NULL,
            line   TEXT NOT NULL,
            PRIMARY KEY (build, seq)
        ) WITHOUT ROWID;
        CREATE TABLE audit (
            id        INTEGER PRIMARY KEY,
            at        INTEGER NOT NULL,
            identity  TEXT NOT NULL,
            action    TEXT NOT NULL,
            result    TEXT NOT NULL,
            detail    TEXT NOT NULL
        );
        CREATE INDEX audit_at ON audit(at);
        """,

        // 2: each build's command token (handed only to the builder that takes it).
        """
        ALTER TABLE builds ADD COLUMN command_id TEXT;
        CREATE UNIQUE INDEX builds_command ON builds(command_id);
        """,

        // 3: only forward: a build's rank (queued 0, handed over 1, running 2, finished 3) and the agent's own sent_at.
        """
        ALTER TABLE builds ADD COLUMN rank INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE agents ADD COLUMN sent_at INTEGER NOT NULL DEFAULT 0;
        """,

        // 4: admins' acknowledgements of findings (agentctl ack); they go with their node.
        """
        CREATE TABLE acks (
            node        TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
            kind        INTEGER NOT NULL,
            finding     TEXT NOT NULL,
            subject     TEXT NOT NULL,
            first_seen  INTEGER NOT NULL,
            severity    INTEGER NOT NULL,
            at          INTEGER NOT NULL,
            until       INTEGER NOT NULL,
            acked_by    TEXT NOT NULL,
            reason      TEXT NOT NULL,
            PRIMARY KEY (node, kind, finding, subject)
        );
        CREATE INDEX acks_until ON acks(until);
        """,

        // 5: a build's rank makes room for "an admin asked it to stop" (generation × 8 + place × 2 + asked), so a
        // write that does not know of the request is behind it.
        """
        UPDATE builds SET rank = rank / 4 * 8 + rank % 4 * 2;
        """,

        // 6: remediation pacing: a row per pool (the last fencing token, the last lease taken or ended) and its leases.
        RemediationSql.Migration,

        // 7: the Debian packages of each pushed digest, from the builders' inventories (issue 27; agentctl images --package).
        ImageInventorySql.Migration,

        // 8: language packages (issue 27): a package once per version too (a lock file may pin two versions of one name).
        ImageInventorySql.SqliteLanguageMigration,
    ];

    private readonly string _path;
    private readonly SqliteConnection _connection;

    /// <summary>
    /// Opens (creating) <paramref name="path"/>. Commits are <c>synchronous=FULL</c>: the WAL is synced at every commit,
    /// so what the writer acknowledged survives a power loss (with NORMAL the last commits could go, and with them a
    /// build id that would then be handed out again). The group commit makes that one fsync per batch.
    /// </summary>
    public SqliteStore(string path)
        : this(path, fullSync: true)
    {
    }

    /// <summary>With <paramref name="fullSync"/> false, <c>synchronous=NORMAL</c>: only the benchmark's comparison uses it.</summary>
    internal SqliteStore(string path, bool fullSync)
    {
        _path = path;
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
        }.ToString());
        _connection.Open();
        Execute($"PRAGMA journal_mode=WAL; PRAGMA synchronous={(fullSync ? "FULL" : "NORMAL")}; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
    }

    public static int CurrentVersion => Migrations.Length;

    public StoreKind Kind => StoreKind.Sqlite;

    public string Location => _path;

    public int SchemaVersion => Convert.ToInt32(Scalar("PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);

    public int Migrate()
    {
        var version = SchemaVersion;
        StoreSql.RefuseNewer(version, CurrentVersion);

        for (var v = version; v < CurrentVersion; v++)
        {
            using var tx = _connection.BeginTransaction();
            Execute(Migrations[v], tx);
            Execute($"PRAGMA user_version = {v + 1}", tx);
            tx.Commit();
        }

        return version;
    }

    public StoredState Load(int recentEvents) => StoreSql.State(_connection, null, recentEvents);

    public void Commit(IReadOnlyList<StoreOp> ops)
    {
        try
        {
            using var tx = _connection.BeginTransaction();
            foreach (var statement in StorePlan.Of(ops, leases: false).Statements)
            {
                if (Exec(tx, statement.Sql, [.. statement.Args.Select((v, i) => ("$" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), v))]) == 0
                    && statement.Conflict is { } conflict)
                {
                    throw conflict(); // rolled back at dispose: nothing of this batch is stored
                }
            }

            tx.Commit();
        }
        catch (SqliteException ex) when (FileProblem(ex))
        {
            throw new StoreUnavailableException($"database {_path}: {ex.Message}", ex);
        }
    }

    // SQLITE_BUSY, LOCKED, IOERR, FULL, CANTOPEN: the file, not the write, is the problem.
    private static bool FileProblem(SqliteException ex) => ex.SqliteErrorCode is 5 or 6 or 10 or 13 or 14;

    public ISharedStore? Shared => null;

    public long? NextBuildId() => null; // one instance: BuildQueue's counter, under its lock

    public bool TryClaimBuild(long id, Func<byte[], byte[]?> claim, bool giveBack = false)
    {
        try
        {
            return Claim(id, claim, giveBack);
        }
        catch (SqliteException ex) when (FileProblem(ex))
        {
            throw new StoreUnavailableException($"database {_path}: {ex.Message}", ex);
        }
    }

    private bool Claim(long id, Func<byte[], byte[]?> claim, bool giveBack)
    {
        // A write connection of its own (the writer's belongs to the writer thread); BEGIN IMMEDIATE takes the file's
        // write lock, so the read and the update are one step for every connection.
        using var c = OpenWriter(busyMs: 5000);
        using var tx = c.BeginTransaction(deferred: false);
        byte[]? body = null;
        StoreSql.Each(c, tx, "SELECT body FROM builds WHERE id = @i", r => body = (byte[])r.GetValue(0), ("@i", id));
        var next = body is null ? null : claim(body);
        if (next is null)
        {
            return false;
        }

        using var update = c.CreateCommand();
        update.Transaction = tx;
        update.CommandText = $"UPDATE builds SET body = @b, rank = {StoreSql.ClaimRank} WHERE id = @i";
        update.Parameters.AddWithValue("@b", next);
        update.Parameters.AddWithValue("@giveBack", giveBack);
        update.Parameters.AddWithValue("@i", id);
        update.ExecuteNonQuery();
        tx.Commit();
        return true;
    }

    public T DecideRemediationPool<T>(string pool, Func<RemediationPoolRow, (T Result, RemediationPoolWrite? Write)> decide)
    {
        try
        {
            // BEGIN IMMEDIATE: the file's write lock for the read and the write, against every other connection.
            using var c = OpenWriter(busyMs: 5000);
            using var tx = c.BeginTransaction(deferred: false);
            return RemediationSql.Decide(c, tx, pool, forUpdate: false, decide);
        }
        catch (SqliteException ex) when (FileProblem(ex))
        {
            throw new StoreUnavailableException($"database {_path}: {ex.Message}", ex);
        }
    }

    public IReadOnlyList<RemediationPoolRow> LoadRemediationPools()
    {
        try
        {
            using var c = OpenReader();
            using var tx = c.BeginTransaction(deferred: true);
            return RemediationSql.Pools(c, tx);
        }
        catch (SqliteException ex) when (FileProblem(ex))
        {
            throw new StoreUnavailableException($"database {_path}: {ex.Message}", ex);
        }
    }

    public StoredState LoadNode(string node, int recentEvents)
    {
        using var c = OpenReader();
        using var tx = c.BeginTransaction(deferred: true); // one snapshot for all the reads
        var state = StoreSql.State(c, tx, recentEvents, "= @node", ("@node", node));
        tx.Commit();
        return state;
    }

    public StoredBuild? LoadBuildByToken(string token)
    {
        using var c = OpenReader();
        StoredBuild? found = null;
        StoreSql.Each(c, null, $"SELECT {StoreSql.BuildColumns} FROM builds WHERE command_id = @k", r => found = StoreSql.Build(r), ("@k", token));
        return found;
    }

    public (long MaxSeq, long Bytes) BuildLogSize(long build)
    {
        using var c = OpenReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COALESCE(MAX(seq), 0), COALESCE(SUM(LENGTH(CAST(line AS BLOB))), 0) FROM build_log WHERE build = $b";
        cmd.Parameters.AddWithValue("$b", build);
        using var r = cmd.ExecuteReader();
        return r.Read() ? (r.GetInt64(0), r.GetInt64(1)) : (0, 0);
    }

    public List<(long Seq, string Line)> ReadBuildLog(long build, long after, int limit)
    {
        using var c = OpenReader();
        return StoreSql.LogPage(c, build, after, limit);
    }

    public List<ImagePackageRow> FindImagePackages(string name, string? version, int limit)
    {
        try
        {
            using var c = OpenReader();
            return ImageInventorySql.Find(c, name, version, limit);
        }
        catch (SqliteException ex) when (FileProblem(ex))
        {
            throw new StoreUnavailableException($"database {_path}: {ex.Message}", ex);
        }
    }

    public IReadOnlyDictionary<string, long> Counts() => StoreSql.Counts(_connection, null);

    public string? Ping()
    {
        try
        {
            // Its own connection: the writer's is used by the writer thread, and a SqliteConnection is not thread-safe.
            using var c = OpenReader();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT COUNT(*) FROM sqlite_schema";
            cmd.ExecuteScalar();
            return null;
        }
        catch (SqliteException ex)
        {
            return ex.Message;
        }
    }

    public IEnumerable<object?[]> Export(string table)
    {
        using var c = OpenReader();
        foreach (var row in StoreSql.Rows(c, table))
        {
            yield return row;
        }
    }

    public void ImportAll(Func<string, IEnumerable<object?[]>> rows, IReadOnlyDictionary<string, long>? expected = null)
    {
        using var tx = _connection.BeginTransaction();
        foreach (var (table, columns) in StoreSchema.Tables)
        {
            var sql = $"INSERT INTO {table}({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select((_, i) => "$p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)))})";
            foreach (var row in rows(table))
            {
                Exec(tx, sql, [.. row.Select((v, i) => ("$p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), v))]);
            }
        }

        StoreSql.Verify(_connection, tx, expected);
        tx.Commit();
    }

    /// <summary>Holds the write lock (BEGIN IMMEDIATE) until disposed: migrate-store's source cannot change while it is read.</summary>
    public IDisposable HoldWrites()
    {
        var c = OpenWriter(busyMs: 2000);
        var tx = c.BeginTransaction(deferred: false);
        return new Held(c, tx);
    }

    private sealed class Held(SqliteConnection c, SqliteTransaction tx) : IDisposable
    {
        public void Dispose()
        {
            tx.Rollback();
            tx.Dispose();
            c.Dispose();
        }
    }

    /// <summary>A read-write connection besides the writer's, waiting up to <paramref name="busyMs"/> for the file's write lock.</summary>
    private SqliteConnection OpenWriter(int busyMs)
    {
        // DefaultTimeout too: Microsoft.Data.Sqlite retries a busy BEGIN IMMEDIATE itself until it (30 s by default),
        // past busy_timeout and past the caller's deadline; measured 31 s (review).
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Mode = SqliteOpenMode.ReadWrite, Pooling = false, DefaultTimeout = Math.Max(1, busyMs / 1000) }.ToString());
        c.Open();
        using var busy = c.CreateCommand();
        busy.CommandText = $"PRAGMA busy_timeout={busyMs}";
        busy.ExecuteNonQuery();
        return c;
    }

    private SqliteConnection OpenReader()
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    private int Exec(SqliteTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        using var cmd = _connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return cmd.ExecuteNonQuery();
    }

    private void Execute(string sql, SqliteTransaction? tx = null)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }

    private object? Scalar(string sql)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    public void Dispose() => _connection.Dispose();
}
