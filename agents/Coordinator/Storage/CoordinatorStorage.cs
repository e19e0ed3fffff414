using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>The open database: the writer's connection (migrated at start) and fresh read-only connections on demand.</summary>
public sealed partial class CoordinatorStorage : IAsyncDisposable
{
    private readonly string _path;

    public CoordinatorStorage(IOptions<CoordinatorOptions> options, ILogger<CoordinatorStorage> logger)
    {
        _path = options.Value.Database;
        try
        {
            Connection = Database.Open(_path);
            var from = Database.Migrate(Connection);
            if (from != Database.CurrentVersion)
            {
                Log.Migrated(logger, _path, from, Database.CurrentVersion);
            }
        }
        catch (SqliteException ex)
        {
            throw new InvalidOperationException($"cannot open database {_path}: {ex.Message}", ex);
        }

        Writer = new StoreWriter(Connection, logger);
    }

    public SqliteConnection Connection { get; }

    public StoreWriter Writer { get; }

    public SqliteConnection OpenReader()
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await Writer.DisposeAsync().ConfigureAwait(false);
        Connection.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(2601, LogLevel.Information, "database {Path}: schema migrated from version {From} to {To}")]
        public static partial void Migrated(ILogger logger, string path, int from, int to);
    }
}
