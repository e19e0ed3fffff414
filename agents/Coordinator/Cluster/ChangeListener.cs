using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Prometheus;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Cluster;

/// <summary>
/// Several instances, one state: LISTENs on the database's own notification channel (no second broker). Every commit
/// of another instance names what it changed (a node, a build, a build's log); this instance reads that from the
/// store and takes it in, so its watchers see the change in the order it was committed, typically within
/// milliseconds. When the listening connection breaks, it reconnects with jittered backoff and reads what changed
/// since the last change it is sure to have taken in (the store's change log, <see cref="ChangeLog"/>; issue 28), or the
/// whole store when that is not known (at start) or no longer kept (compacted). Only with Store = postgresql.
/// </summary>
/// <remarks>
/// The mark it reads from moves while it listens: about once a second after notifications came, it asks the database
/// for the current snapshot's mark and sends it to itself as a notification on a channel of its own session. The
/// notification queue is in commit order, and every transaction below the mark had committed (or rolled back) before
/// that mark was taken, so when the mark comes back every notification of those transactions has come before it;
/// once the batch it came in is applied, nothing below the mark can be missing here.
/// </remarks>
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

    /// <summary>How often the mark is moved on while notifications come (and how soon a resync reads from it).</summary>
    private static readonly TimeSpan MarkEvery = TimeSpan.FromSeconds(1);

    /// <summary>Without notifications: a mark (which is also a query noticing a silently dead connection) this often.</summary>
    private static readonly TimeSpan QuietMarkEvery = TimeSpan.FromSeconds(30);

    private static readonly Counter Applied = Metrics.CreateCounter(
        "toolforge_coordinator_changes_applied_total", "Changes made through other instances taken in here, by kind.", "kind");

    private static readonly Counter Resyncs = Metrics.CreateCounter(
        "toolforge_coordinator_resyncs_total", "Reads of the store when listening began: at start (start), and after a reconnect what changed since the last mark (changes) or all of it (whole).", "kind");

    private long _mark; // the mark below which everything is taken in here; 0: none (read the whole store)
    private string _epoch = string.Empty; // the history _mark belongs to (ChangeLog.EpochQuery)

    private static readonly Gauge MarkMoved = Metrics.CreateGauge(
        "toolforge_coordinator_change_mark_moved_timestamp_seconds",
        "When this instance's change mark last moved on (a long transaction anywhere on the database holds every mark back; a resync then reads more).");

    /// <summary>The mark below which every change is taken in here (0: none yet).</summary>
    internal long Mark => Interlocked.Read(ref _mark);

    /// <summary>What the last resync read (for tests and the log); null before the first.</summary>
    internal ResyncResult? LastResync { get; private set; }

    /// <summary>How many resyncs have ended (a test waits for the next).</summary>
    internal int ResyncCount => Volatile.Read(ref _resyncs);

    private int _resyncs;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (store is not PostgresStore pg)
        {
            return; // one instance: nothing to listen to
        }

        await startup.Ready.WaitAsync(stoppingToken).ConfigureAwait(false); // the store is migrated and loaded first

        var streak = new RetryStreak(Reconnect, time, (ex, _) => Log.Lost(logger, ex.Message), (_, _) => Log.Listening(logger));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await Task.Run(pg.OpenDedicated, stoppingToken).ConfigureAwait(false);
                var pending = new List<(string Channel, string Payload)>();
                connection.Notification += (_, e) => pending.Add((e.Channel, e.Payload)); // raised inside WaitAsync or a command, on this task
                var markChannel = $"{PostgresStore.Channel}_mark_{connection.ProcessID.ToString(CultureInfo.InvariantCulture)}"; // this session's own
                // synchronous_commit on for this session whatever the role's or database's setting: a mark's commit must
                // be flushed (with every record before it) before the mark comes back, or a crash could reuse ids below it.
                await using (var listen = new NpgsqlCommand($"SET synchronous_commit = on; LISTEN {PostgresStore.Channel}; LISTEN {markChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false); // bounded by the command timeout
                }

                // The history this session's marks belong to ("unknown …" when it cannot be read: its marks then never count).
                var epoch = await Task.Run(() => ChangeLog.Epoch(connection, null), CancellationToken.None).ConfigureAwait(false);

                // Listening now: what changed before (while starting, or while the connection was down) is read. The
                // streak ends (said once, listening again) when the first mark came back: a session that fails again
                // right after each reconnect keeps backing off instead of reading the store again every second.
                await ResyncAsync(pg).ConfigureAwait(false);
                await ListenAsync(pg, connection, markChannel, epoch == _epoch, pending, () => streak.Succeeded(), stoppingToken).ConfigureAwait(false);
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
    /// together: one read of 50 nodes costs about what one of a single node does), and moves the mark on. Returns only
    /// when stopping; a broken connection or a store that cannot be read throws, and the caller reconnects and resyncs.
    /// </summary>
    /// <remarks>
    /// There is no short wait to gather more after a first notification: a 50 ms <c>WaitAsync</c> right after one
    /// was seen not to return on this machine (Npgsql 10.0.3) until the next notification came, so a change waited for
    /// the next one, for seconds (the multi-instance watch test failed on it about one run in two).
    /// </remarks>
    private async Task ListenAsync(PostgresStore pg, NpgsqlConnection connection, string markChannel, bool marksCount, List<(string Channel, string Payload)> pending, Action healthy, CancellationToken ct)
    {
        // No cancellation token goes into Npgsql here: cancelling a wait races with the connection's own state and
        // can throw from inside the token's callbacks (seen at shutdown). Waits of at most 1 s stop just as well.
        long markedAt = 0; // the first mark is asked for at once: it proves the session works, and moves the mark on
        var heard = false; // a change notification since the last mark was asked for (the mark's own return is none)
        var proven = false;
        while (!ct.IsCancellationRequested)
        {
            if (pending.Count == 0)
            {
                // Only when nothing is waiting: notifications read while the last mark was asked for are applied now.
                await connection.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }

            if (pending.Count > 0)
            {
                var batch = pending.ToList();
                pending.Clear();
                long? mark = null;
                var changes = new List<string>(batch.Count);
                foreach (var (channel, payload) in batch)
                {
                    if (channel == markChannel)
                    {
                        mark = long.TryParse(payload, NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : throw new InvalidOperationException($"the mark came back unreadable: {ReportLimits.Cut(payload, 100)}");
                    }
                    else
                    {
                        changes.Add(payload);
                    }
                }

                heard |= changes.Count > 0;
                await ApplyAsync(pg, changes).ConfigureAwait(false);
                if (mark is { } applied)
                {
                    if (!proven)
                    {
                        proven = true;
                        healthy();
                    }

                    if (marksCount && applied > _mark)
                    {
                        // Everything that came before it is taken in now. (A session on another history than the last
                        // resync's — a failover between the two — moves nothing: its marks count after the next resync.)
                        Interlocked.Exchange(ref _mark, applied);
                        MarkMoved.SetToCurrentTimeUtc();
                    }
                }
            }

            var since = markedAt == 0 ? QuietMarkEvery : Stopwatch.GetElapsedTime(markedAt);
            if ((heard && since >= MarkEvery) || since >= QuietMarkEvery)
            {
                // The mark goes out with this snapshot and comes back after every notification committed before it.
                markedAt = Stopwatch.GetTimestamp();
                heard = false;
                await using var ask = new NpgsqlCommand(ChangeLog.MarkStatement, connection) { CommandTimeout = 5 };
                ask.Parameters.Add(new NpgsqlParameter { Value = markChannel });
                ask.Parameters.Add(new NpgsqlParameter { Value = pg.Instance });
                await ask.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
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
                    Log.Unknown(logger, ReportLimits.Cut(payload, 100));
                    break;
            }
        }

        await ApplyChangesAsync(pg, nodes, logIds, buildIds).ConfigureAwait(false);
    }

    /// <summary>Takes in changed nodes, then build logs, then builds (in the order given).</summary>
    private async Task ApplyChangesAsync(PostgresStore pg, IReadOnlyCollection<string> nodes, IReadOnlyList<long> logIds, IReadOnlyList<long> buildIds)
    {
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

        // A read that fails (StoreUnavailableException) leaves this batch untaken (and the mark where it was): it goes
        // up to the listen loop, which reconnects and reads what changed since the mark.
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
    /// Reads what may have been missed while not listening: with a mark, what the store's change log names since it
    /// (only those nodes' and builds' rows); without one, or when changes since it are no longer kept, the whole
    /// store, whose rows replace what this instance held (nodes and builds it held but the store no longer has go).
    /// </summary>
    private async Task ResyncAsync(PostgresStore pg)
    {
        var started = Stopwatch.GetTimestamp();
        var from = _mark;
        var mark = state.WriteMark(); // before the read: what this instance writes meanwhile is newer than it
        string? why = null;
        StoreChanges? changes = null;
        if (from > 0)
        {
            var maxNodes = Math.Max(100, state.NodeNames().Count / 2);
            (changes, why) = await Task.Run(() => pg.LoadChanges(new StoreMark(from, _epoch), StateStore.RecentEvents, maxNodes)).ConfigureAwait(false);
        }

        ResyncResult result;
        if (changes is not null)
        {
            var again = state.Refresh(changes.NodeNames, changes.Nodes, mark);
            if (again.Count > 0)
            {
                await RefreshNodesAsync(pg, again).ConfigureAwait(false);
            }

            await ApplyChangesAsync(pg, [], changes.Logs, changes.Builds).ConfigureAwait(false);
            Interlocked.Exchange(ref _mark, Math.Max(from, changes.Mark));
            result = new ResyncResult(false, changes.NodeNames.Count, changes.Builds.Count, changes.Logs.Count, Stopwatch.GetElapsedTime(started), null);
        }
        else
        {
            mark = state.WriteMark();
            var nodesBefore = state.NodeNames();
            var buildsBefore = builds.Ids();
            var (all, storeMark) = await Task.Run(() => pg.LoadMarked(StateStore.RecentEvents)).ConfigureAwait(false);
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

            _epoch = storeMark.Epoch;
            Interlocked.Exchange(ref _mark, storeMark.Xmin);
            result = new ResyncResult(true, all.Nodes.Count, all.Builds.Count, all.Builds.Count, Stopwatch.GetElapsedTime(started), why);
        }

        if (_mark > from)
        {
            MarkMoved.SetToCurrentTimeUtc(); // only when it moved: a mark held back stays visible as old
        }

        Resyncs.WithLabels(from == 0 ? "start" : result.Whole ? "whole" : "changes").Inc();
        if (from == 0)
        {
            Log.Loaded(logger, result.Nodes, result.Builds, result.Took.TotalMilliseconds);
            if (ChangeLog.IsUnknown(_epoch))
            {
                Log.NoEpoch(logger, _epoch); // said at start, not first at the next reconnect
            }
        }
        else if (result.Whole)
        {
            Log.ResyncedWhole(logger, result.Nodes, result.Builds, result.Took.TotalMilliseconds, why ?? "no mark");
        }
        else
        {
            Log.ResyncedChanges(logger, result.Nodes, result.Builds, result.Logs, result.Took.TotalMilliseconds);
        }

        LastResync = result;
        Interlocked.Increment(ref _resyncs);
    }

    /// <summary>What a resync read: the whole store, or what changed since the mark (nodes, builds, build logs named).</summary>
    internal sealed record ResyncResult(bool Whole, int Nodes, int Builds, int Logs, TimeSpan Took, string? Why);

    private static partial class Log
    {
        [LoggerMessage(2901, LogLevel.Warning, "listening for other instances' changes failed ({Reason}); reconnecting")]
        public static partial void Lost(ILogger logger, string reason);

        [LoggerMessage(2902, LogLevel.Information, "listening for other instances' changes again")]
        public static partial void Listening(ILogger logger);

        [LoggerMessage(2903, LogLevel.Warning, "a change notification that is not ours: {Payload}")]
        public static partial void Unknown(ILogger logger, string payload);

        [LoggerMessage(2904, LogLevel.Debug, "listening for other instances' changes: read the whole store ({Nodes} nodes, {Builds} builds) in {Ms:0} ms")]
        public static partial void Loaded(ILogger logger, int nodes, int builds, double ms);

        [LoggerMessage(2905, LogLevel.Information, "read the whole store again ({Nodes} nodes, {Builds} builds) in {Ms:0} ms: {Why}")]
        public static partial void ResyncedWhole(ILogger logger, int nodes, int builds, double ms, string why);

        [LoggerMessage(2907, LogLevel.Warning, "which database history a change mark belongs to cannot be read ({Why}): every reconnect will read the whole store")]
        public static partial void NoEpoch(ILogger logger, string why);

        [LoggerMessage(2906, LogLevel.Information, "read what changed while not listening: {Nodes} nodes, {Builds} builds, {Logs} build logs, in {Ms:0} ms")]
        public static partial void ResyncedChanges(ILogger logger, int nodes, int builds, int logs, double ms);

    }
}
