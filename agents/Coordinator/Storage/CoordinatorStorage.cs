using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>The open store (SQLite or PostgreSQL; migrated by <see cref="StoreStartup"/>) and its single writer.</summary>
public sealed partial class CoordinatorStorage : IAsyncDisposable
{
    private readonly ILogger<CoordinatorStorage> _logger;

    public CoordinatorStorage(IOptions<StorageOptions> options, ILogger<CoordinatorStorage> logger)
    {
        _logger = logger;
        Engine = Open(options.Value); // PostgreSQL: nothing is connected yet (StoreStartup migrates and loads)
        Writer = new StoreWriter(Engine, logger);
    }

    /// <summary>
    /// Brings the schema up to date. The database's absence is a <see cref="StoreUnavailableException"/> (the caller
    /// may wait for it); any other database error is a problem a restart does not cure.
    /// </summary>
    public void Migrate()
    {
        try
        {
            var from = Engine.Migrate();
            var to = Engine.SchemaVersion;
            if (from != to)
            {
                Log.Migrated(_logger, Engine.Location, from, to);
            }
        }
        catch (System.Data.Common.DbException ex)
        {
            throw new InvalidOperationException($"cannot open database {Engine.Location}: {ex.Message}", ex);
        }
    }

    public IStoreEngine Engine { get; }

    public StoreWriter Writer { get; }

    /// <summary>The engine the options name, opened but not migrated.</summary>
    public static IStoreEngine Open(StorageOptions o)
    {
        if (o.Engine == StoreKind.PostgreSql)
        {
            string? password = null;
            if (o.PostgreSql.PasswordFile.Length > 0)
            {
                password = File.ReadLines(o.PostgreSql.PasswordFile).FirstOrDefault()?.TrimEnd('\r')
                    ?? throw new Common.Hosting.ConfigurationProblemException($"{StorageOptions.Section}:{nameof(StorageOptions.PostgreSql)}:{nameof(PostgreSqlOptions.PasswordFile)}: {o.PostgreSql.PasswordFile} is empty");
            }

            return new PostgresStore(o.PostgreSql.ConnectionString, password, o.PostgreSql.CommandTimeoutSeconds, InstanceName());
        }

        try
        {
            return new SqliteStore(o.Database);
        }
        catch (Microsoft.Data.Sqlite.SqliteException ex)
        {
            // Not a SQLite file, or one this process may not open: known at start, not cured by a restart (exit 78).
            throw new Common.Hosting.ConfigurationProblemException($"{StorageOptions.Section}:{nameof(StorageOptions.Database)}: cannot open {o.Database} as a SQLite database: {ex.Message}");
        }
    }

    /// <summary>host:pid:random — names this process in notifications to other instances.</summary>
    public static string InstanceName() =>
        $"{Environment.MachineName}:{Environment.ProcessId}:{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";

    public async ValueTask DisposeAsync()
    {
        await Writer.DisposeAsync().ConfigureAwait(false);
        Engine.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(2601, LogLevel.Information, "database {Location}: schema migrated from version {From} to {To}")]
        public static partial void Migrated(ILogger logger, string location, int from, int to);
    }
}
