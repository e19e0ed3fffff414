using System.Diagnostics;
using System.Runtime;
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

    /// <summary>Between attempts while the database does not answer: 1 s doubling, at most 10 s, full jitter.</summary>
    private static readonly RetryBounds Reopen = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(10));

    // One line when the database does not answer at start (2602), one when it answers (2603); none per attempt.
    private readonly RetryStreak _streak = new(Reopen, time,
        (ex, _) => Log.Waiting(logger, storage.Engine.Location, ex.Message),
        (failures, _) => Log.Serving(logger, storage.Engine.Location, failures));

    private TimeSpan _wait; // before the next attempt, after the first one failed

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
            // Held only on SQLite: a shared PostgreSQL may keep even the first attempt waiting on the network.
            StartOnce(holdCollections: !storage.Engine.SharedByInstances);
            return true;
        }
        catch (StoreUnavailableException ex) when (storage.Engine.SharedByInstances)
        {
            _wait = _streak.Failed(ex);
            return false;
        }
        catch (StoreUnavailableException ex)
        {
            throw new InvalidOperationException($"cannot open database {storage.Engine.Location}: {ex.Message}", ex);
        }
    }

    /// <param name="holdCollections">No collection during the read and take-in (<see cref="LoadBudget"/>): only in the
    /// first attempt, made before Kestrel listens, with nothing else running.</param>
    private void StartOnce(bool holdCollections)
    {
        var started = Stopwatch.GetTimestamp();
        TimeSpan read;
        StoredState stored;
        storage.Migrate();
        var migrated = Stopwatch.GetElapsedTime(started);
        var held = holdCollections && HoldCollections();
        try
        {
            stored = storage.Engine.Load(StateStore.RecentEvents);
            read = Stopwatch.GetElapsedTime(started);
            state.Load(stored);
            builds.Load(stored);
        }
        finally
        {
            ResumeCollections(held);
        }

        var took = Stopwatch.GetElapsedTime(started);
        Log.Loaded(logger, storage.Engine.Location, stored.Nodes.Count, stored.Builds.Count, took.TotalMilliseconds,
            migrated.TotalMilliseconds, (read - migrated).TotalMilliseconds, (took - read).TotalMilliseconds, held ? "held off" : "as usual");
        health.MarkReady();
        _ready.TrySetResult();
    }

    /// <summary>What the load may allocate with no collection: every node's state, all of which stays.</summary>
    /// <remarks>
    /// The gen-0 collections the load would set off on the way copy all of it again: with 10,000 nodes (41 MiB
    /// allocated) under the unit's workstation GC, four of them; taken in 83-125 ms with them, 40-58 ms without; READY
    /// median 238 ms against 170 ms, RSS the same (`Coordinator.Bench ready 10000`). Reserved, not touched: a load that
    /// allocates more goes on with collections as usual past it.
    /// </remarks>
    internal const long LoadBudget = 128L << 20;

    /// <summary>
    /// No collection during the load, up to <see cref="LoadBudget"/>; false when the GC cannot grant it (a heap hard
    /// limit; a region already held).
    /// </summary>
    /// <remarks>
    /// Granting it may collect first: at the first start the heap is small (the retry path, with Kestrel listening, does
    /// not hold). Asked with <c>disallowFullBlockingGC</c> and 16 MiB for large objects it was granted too, but READY
    /// was slower (median 224 ms against 162 ms, RSS 100 MiB against 91 MiB, same bench): not used.
    /// </remarks>
    internal static bool HoldCollections()
    {
        try
        {
            return GC.TryStartNoGCRegion(LoadBudget);
        }
        catch (Exception ex) when (ex is ArgumentOutOfRangeException or InvalidOperationException)
        {
            return false; // more than the GC can reserve, or a region already held: load with collections
        }
    }

    internal static void ResumeCollections(bool held)
    {
        // A load that allocated past the budget has already left the region (the GC collected as usual): nothing to end.
        if (held && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
        {
            try
            {
                GC.EndNoGCRegion();
            }
            catch (InvalidOperationException)
            {
                // The region ended on its own meanwhile (past the budget, or a collection another thread asked for): the
                // load went on with collections, which is all this means.
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!IsReady && !stoppingToken.IsCancellationRequested)
        {
            if (!await _streak.WaitAsync(_wait, stoppingToken).ConfigureAwait(false))
            {
                return;
            }

            try
            {
                // Not held here: Kestrel already accepts (agents' handshakes allocate meanwhile) and the attempt may
                // wait on the network for seconds.
                await Task.Run(() => StartOnce(holdCollections: false), stoppingToken).ConfigureAwait(false);
                _streak.Succeeded();
            }
            catch (StoreUnavailableException ex)
            {
                // Still not answering: the first line said so, and health says NOT_SERVING. Try again.
                _wait = _streak.Failed(ex);
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

        [LoggerMessage(2605, LogLevel.Information, "database {Location}: {Nodes} nodes and {Builds} builds loaded in {Ms:0} ms (schema checked {MigrateMs:0} ms, read {ReadMs:0} ms, taken in {TakeMs:0} ms; garbage collections {Collections})")]
        public static partial void Loaded(ILogger logger, string location, int nodes, int builds, double ms, double migrateMs, double readMs, double takeMs, string collections);

        [LoggerMessage(2604, LogLevel.Critical, "database {Location} answers but cannot be used: {Reason}; stopping")]
        public static partial void Failed(ILogger logger, string location, string reason);
    }
}
