using Npgsql;
using Prometheus;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Cluster;

/// <summary>
/// Which instance judges nodes for the metrics and applies retention: the one holding a session-level advisory lock
/// on a connection of its own. When the holder dies its session ends, the database drops the lock and the next
/// instance to try takes it (within one sweep interval). With SQLite the one instance always holds it.
/// </summary>
public sealed partial class SweeperLease(IStoreEngine store, ILogger<SweeperLease> logger) : IDisposable
{
    private static readonly Gauge Held = Metrics.CreateGauge("toolforge_coordinator_sweeper_lease",
        "1 on the instance that judges nodes for the metrics and applies retention, 0 on the others.");

    private NpgsqlConnection? _connection;
    private volatile bool _held;

    /// <summary>Whether this instance held the lease at the last sweep.</summary>
    public bool IsHeld => _held;

    /// <summary>Whether this instance holds the lease now (taking it if it is free). Never throws for the database's absence.</summary>
    public bool TryHold()
    {
        if (store is not PostgresStore pg)
        {
            Held.Set(1);
            return true;
        }

        try
        {
            _connection ??= pg.OpenDedicated();
            using var cmd = new NpgsqlCommand(_held ? "SELECT 1" : $"SELECT pg_try_advisory_lock({PostgresStore.SweeperLock})", _connection) { CommandTimeout = 5 };
            var result = cmd.ExecuteScalar();
            var held = _held || result is true;
            Set(held, string.Empty);
            return held;
        }
        catch (Exception ex) when (ex is NpgsqlException or StoreUnavailableException or TimeoutException or InvalidOperationException)
        {
            // The session (and with it the lock, if we had it) is gone.
            _connection?.Dispose();
            _connection = null;
            Set(false, ex.Message);
            return false;
        }
    }

    private void Set(bool held, string reason)
    {
        if (held != _held)
        {
            if (held)
            {
                Log.Took(logger);
            }
            else
            {
                Log.Lost(logger, reason.Length > 0 ? reason : "another instance holds it");
            }
        }

        _held = held;
        Held.Set(held ? 1 : 0);
    }

    public void Dispose()
    {
        _connection?.Dispose(); // closing the session releases the lock at once
        _connection = null;
    }

    private static partial class Log
    {
        [LoggerMessage(2961, LogLevel.Information, "this instance holds the sweeper lease: it judges nodes for the metrics and applies retention")]
        public static partial void Took(ILogger logger);

        [LoggerMessage(2962, LogLevel.Warning, "this instance no longer holds the sweeper lease ({Reason})")]
        public static partial void Lost(ILogger logger, string reason);
    }
}
