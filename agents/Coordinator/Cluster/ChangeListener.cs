using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Prometheus;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Cluster;

/// <summary>
/// Several instances, one state: LISTENs on the database's own notification channel (no second broker). Every commit
/// of another instance names what it changed (a node, a build, a build's log); this instance reads that from the
/// store and takes it in, so its watchers see the change in the order it was committed, typically within
/// milliseconds. When the listening connection breaks, it reconnects with jittered backoff and reads everything
/// again, since notifications sent meanwhile are gone. Only with Store = postgresql.
/// </summary>
public sealed partial class ChangeListener(
    IStoreEngine store,
    StateStore state,
    BuildQueue builds,
    BuildLogs logs,
    StoreStartup startup,
    TimeProvider time,
    ILogger<ChangeListener> logger) : BackgroundService
{
    /// <summary>Between attempts to listen again: 200 ms doubling, at most 5 s.</summary>
    private static readonly RetryBounds Reconnect = new(Initial: TimeSpan.FromMilliseconds(200), Max: TimeSpan.FromSeconds(5));

    private static readonly Counter Applied = Metrics.CreateCounter(
        "toolforge_coordinator_changes_applied_total", "Changes made through other instances taken in here, by kind.", "kind");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (store is not PostgresStore pg)
        {
            return; // one instance: nothing to listen to
        }

        await startup.Ready.WaitAsync(stoppingToken).ConfigureAwait(false); // the store is migrated and loaded first

        var streak = new RetryStreak(Reconnect, time, (ex, _) => Log.Lost(logger, ex.Message), (_, _) => Log.Resynced(logger));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await Task.Run(pg.OpenDedicated, stoppingToken).ConfigureAwait(false);
                var pending = new List<string>();
                connection.Notification += (_, e) => pending.Add(e.Payload); // raised inside WaitAsync, on this task
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresStore.Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false); // bounded by the command timeout
                }

                // Listening now: what changed before (while starting, or while the connection was down) is read whole.
                await ResyncAsync(pg).ConfigureAwait(false);
                streak.Succeeded(); // after a lost connection: said once, listening again
                await ListenAsync(pg, connection, pending, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or StoreUnavailableException or TimeoutException or IOException or InvalidOperationException)
            {
                if (!await streak.FailedAndWaitAsync(ex, stoppingToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Waits for notifications and applies what each wait brought, in one batch (a burst that arrived together is read
    /// together: one read of 50 nodes costs about what one of a single node does). Returns only when stopping; a broken
    /// connection or a store that cannot be read throws, and the caller reconnects and resyncs.
    /// </summary>
    /// <remarks>
    /// There is no short wait to gather more after a first notification: a 50 ms <c>WaitAsync</c> right after one
    /// was seen not to return on this machine (Npgsql 10.0.3) until the next notification came, so a change waited for
    /// the next one, for seconds (the multi-instance watch test failed on it about one run in two).
    /// </remarks>
    private async Task ListenAsync(PostgresStore pg, NpgsqlConnection connection, List<string> pending, CancellationToken ct)
    {
        // No cancellation token goes into Npgsql here: cancelling a wait races with the connection's own state and
        // can throw from inside the token's callbacks (seen at shutdown). Waits of at most 1 s stop just as well.
        var idleSince = Stopwatch.GetTimestamp();
        while (!ct.IsCancellationRequested)
        {
            var notified = await connection.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            if (pending.Count > 0)
            {
                var batch = pending.ToList();
                pending.Clear();
                await ApplyAsync(pg, batch).ConfigureAwait(false);
                idleSince = Stopwatch.GetTimestamp();
            }
            else if (!notified && Stopwatch.GetElapsedTime(idleSince) > TimeSpan.FromSeconds(30))
            {
                // 30 s without a notification: a keepalive query notices a silently dead connection.
                idleSince = Stopwatch.GetTimestamp();
                await using var ping = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = 5 };
                await ping.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        ct.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Takes in a batch of changes, each "instance|kind|key" (this instance's own are skipped): the nodes named, read
    /// in one query; then build logs (so followers have every line before they hear a build ended); then builds, in
    /// the order they were committed.
    /// </summary>
    internal async Task ApplyAsync(PostgresStore pg, IReadOnlyList<string> payloads)
    {
        var nodes = new HashSet<string>(StringComparer.Ordinal);
        var logIds = new List<long>();
        var buildIds = new List<long>();
        foreach (var payload in payloads)
        {
            var parts = payload.Split('|', 3);
            if (parts.Length != 3 || parts[0] == pg.Instance)
            {
                continue;
            }

            switch (parts[1])
            {
                case "n":
                    nodes.Add(parts[2]);
                    break;
                case "b" when long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var id):
                    buildIds.Add(id);
                    break;
                case "l" when long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var id):
                    logIds.Add(id);
                    break;
                default:
                    Log.Unknown(logger, payload.Length > 100 ? payload[..100] : payload);
                    break;
            }
        }

        foreach (var chunk in nodes.Chunk(1000))
        {
            await RefreshNodesAsync(pg, chunk).ConfigureAwait(false);
            Applied.WithLabels("node").Inc(chunk.Length);
        }

        foreach (var id in logIds.Distinct())
        {
            await Task.Run(() => logs.Refresh(id)).ConfigureAwait(false);
            Applied.WithLabels("build-log").Inc();
        }

        foreach (var id in buildIds.Distinct()) // in commit order
        {
            await builds.RefreshAsync(id, await Task.Run(() => pg.LoadBuild(id)).ConfigureAwait(false)).ConfigureAwait(false);
            Applied.WithLabels("build").Inc();
        }

        // A read that fails (StoreUnavailableException) leaves this batch untaken: it goes up to the listen loop,
        // which reconnects and reads the whole store once.
    }

    /// <summary>
    /// Reads some nodes and takes them in; nodes acknowledged here while the read ran are read again (a few times at
    /// most: each read begins after this instance's write committed, so it holds that write).
    /// </summary>
    private async Task RefreshNodesAsync(PostgresStore pg, IReadOnlyCollection<string> nodes)
    {
        for (var attempt = 0; attempt < 3 && nodes.Count > 0; attempt++)
        {
            var mark = state.WriteMark(); // before the read: what this instance writes meanwhile is newer than it
            nodes = state.Refresh(nodes, await Task.Run(() => pg.LoadNodes(nodes, StateStore.RecentEvents)).ConfigureAwait(false), mark);
        }
    }

    /// <summary>
    /// Reads the whole store after notifications may have been missed: what it holds replaces what this instance
    /// held, and nodes and builds this instance held before the read but the store no longer has (forgotten or
    /// deleted through another instance meanwhile) go.
    /// </summary>
    private async Task ResyncAsync(PostgresStore pg)
    {
        var mark = state.WriteMark();
        var nodesBefore = state.NodeNames();
        var buildsBefore = builds.Ids();
        var all = await Task.Run(() => pg.Load(StateStore.RecentEvents)).ConfigureAwait(false);
        var again = state.Refresh(nodesBefore, all, mark);
        if (again.Count > 0)
        {
            await RefreshNodesAsync(pg, again).ConfigureAwait(false);
        }
        var stored = all.Builds.Select(b => b.Id).ToHashSet();
        foreach (var id in buildsBefore.Where(id => !stored.Contains(id)))
        {
            await builds.RefreshAsync(id, null).ConfigureAwait(false);
            Applied.WithLabels("build").Inc();
        }

        foreach (var b in all.Builds)
        {
            // Lines first (as in ApplyAsync): a build that ended meanwhile ends its followers here, after its last line.
            await Task.Run(() => logs.Refresh(b.Id)).ConfigureAwait(false);
            await builds.RefreshAsync(b.Id, b).ConfigureAwait(false);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2901, LogLevel.Warning, "listening for other instances' changes failed ({Reason}); reconnecting")]
        public static partial void Lost(ILogger logger, string reason);

        [LoggerMessage(2902, LogLevel.Information, "listening for other instances' changes again; read the whole store once")]
        public static partial void Resynced(ILogger logger);

        [LoggerMessage(2903, LogLevel.Warning, "a change notification that is not ours: {Payload}")]
        public static partial void Unknown(ILogger logger, string payload);

    }
}
