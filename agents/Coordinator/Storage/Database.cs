using Microsoft.Data.Sqlite;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// The coordinator's SQLite file: WAL, foreign keys, and versioned migrations recorded in PRAGMA user_version.
/// A migration runs once, in a transaction; a database newer than this binary is refused rather than damaged.
/// </summary>
public static class Database
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
    ];

    public static int CurrentVersion => Migrations.Length;

    public static SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
        }.ToString());
        connection.Open();
        Execute(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
        return connection;
    }

    /// <summary>Brings the schema up to date; returns the version it was at.</summary>
    public static int Migrate(SqliteConnection connection)
    {
        var version = Convert.ToInt32(Scalar(connection, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        if (version > CurrentVersion)
        {
            throw new InvalidOperationException(
                $"database schema version {version} is newer than this coordinator knows ({CurrentVersion}); refusing to use it");
        }

        for (var v = version; v < CurrentVersion; v++)
        {
            using var tx = connection.BeginTransaction();
            Execute(connection, Migrations[v], tx);
            Execute(connection, $"PRAGMA user_version = {v + 1}", tx);
            tx.Commit();
        }

        return version;
    }

    public static void Execute(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }

    public static object? Scalar(SqliteConnection connection, string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
