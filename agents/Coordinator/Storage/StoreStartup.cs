using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// Brings the store up before anything is served from it: the schema migrated, then every node and build loaded
/// into memory. Tried once while the app is built (so a reachable database is loaded before Kestrel accepts a call).
/// A PostgreSQL that does not answer then is not a crash: the instance starts NOT_SERVING (health, the haproxy agent
/// check, <c>toolforge_coordinator_store_up</c> 0), every call but the health service's is answered UNAVAILABLE, one
/// WRN line says so, and this keeps trying with jittered backoff until the database answers, then serves. A SQLite
/// file that cannot be opened stays a configuration problem (exit 78, <see cref="CoordinatorStorage.Open"/>).
/// </summary>
public sealed partial class StoreStartup(
    CoordinatorStorage storage,
    StateStore state,
    BuildQueue builds,
    StoreHealth health,
    TimeProvider time,
    HostExit exit,
    ILogger<StoreStartup> logger) : BackgroundService
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Between attempts while the database does not answer: the common backoff, 1 s doubling, at most 10 s, full jitter.
    private readonly Backoff _backoff = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));

    /// <summary>Whether the store is migrated and loaded (calls are served).</summary>
    public bool IsReady => _ready.Task.IsCompleted;

    /// <summary>Completes once the store is migrated and loaded; background work that reads the store waits for it.</summary>
    public Task Ready => _ready.Task;

    /// <summary>
    /// One attempt, while the app is built. False when the (shared) database does not answer: the instance starts
    /// NOT_SERVING and <see cref="ExecuteAsync"/> keeps trying. Anything else that fails is thrown: a problem a restart
    /// does not cure.
    /// </summary>
    public bool TryStartNow()
    {
        try
        {
            StartOnce();
            return true;
        }
        catch (StoreUnavailableException ex) when (storage.Engine.SharedByInstances)
        {
            Log.Waiting(logger, storage.Engine.Location, ex.Message);
            return false;
        }
        catch (StoreUnavailableException ex)
        {
            throw new InvalidOperationException($"cannot open database {storage.Engine.Location}: {ex.Message}", ex);
        }
    }

    private void StartOnce()
    {
        storage.Migrate();
        var stored = storage.Engine.Load(StateStore.RecentEvents);
        state.Load(stored);
        builds.Load(stored);
        health.MarkReady();
        _ready.TrySetResult();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!IsReady && !stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(_backoff.Next(), time, stoppingToken).ConfigureAwait(false);
            try
            {
                await Task.Run(StartOnce, stoppingToken).ConfigureAwait(false);
                Log.Serving(logger, storage.Engine.Location, _backoff.Failures);
            }
            catch (StoreUnavailableException)
            {
                // Still not answering: the first line said so, and health says NOT_SERVING. Try again.
            }
            catch (Exception ex) when (ex is InvalidOperationException or System.Data.Common.DbException)
            {
                // Reached, but refused (a schema newer than this binary, a role without rights): waiting will not cure it.
                Log.Failed(logger, storage.Engine.Location, ex.Message);
                exit.StopWith(ExitCodes.Config);
                return;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2602, LogLevel.Warning, "database {Location} does not answer at start ({Reason}): NOT_SERVING, calls answered UNAVAILABLE; trying again with backoff until it answers")]
        public static partial void Waiting(ILogger logger, string location, string reason);

        [LoggerMessage(2603, LogLevel.Information, "database {Location} answers after {Attempts} attempts: migrated and loaded, serving")]
        public static partial void Serving(ILogger logger, string location, int attempts);

        [LoggerMessage(2604, LogLevel.Critical, "database {Location} answers but cannot be used: {Reason}; stopping")]
        public static partial void Failed(ILogger logger, string location, string reason);
    }
}
