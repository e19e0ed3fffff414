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
    ILogger<ChangeListener> logger) : BackgroundService
{
    private static readonly Counter Applied = Metrics.CreateCounter(
        "toolforge_coordinator_changes_applied_total", "Changes made through other instances taken in here, by kind.", "kind");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (store is not PostgresStore pg)
        {
            return; // one instance: nothing to listen to
        }

        var backoff = new Backoff(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5));
        var first = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await Task.Run(pg.OpenDedicated, stoppingToken).ConfigureAwait(false);
                var queue = System.Threading.Channels.Channel.CreateUnbounded<string>(new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true });
                connection.Notification += (_, e) => queue.Writer.TryWrite(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresStore.Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false); // bounded by the command timeout
                }

                // Listening now: what changed before (while starting, or while the connection was down) is read whole.
                await ResyncAsync(pg).ConfigureAwait(false);
                if (!first)
                {
                    Log.Resynced(logger);
                }

                first = false;
                backoff.Reset();
                var wait = ReadAllAsync(connection, stoppingToken);
                await foreach (var batch in Drain(queue.Reader, wait, stoppingToken).ConfigureAwait(false))
                {
                    await ApplyAsync(pg, batch).ConfigureAwait(false);
                }

                await wait.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or StoreUnavailableException or TimeoutException or IOException or InvalidOperationException)
            {
                if (backoff.Failures == 0)
                {
                    Log.Lost(logger, ex.Message);
                }
            }

            await Task.Delay(backoff.Next(), stoppingToken).ConfigureAwait(false);
        }
    }

    // Notifications arrive while the connection waits; this hands them on in batches (all that queued up while the
    // last batch was applied) until the wait ends (the connection broke).
    private static async IAsyncEnumerable<List<string>> Drain(System.Threading.Channels.ChannelReader<string> reader, Task wait,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        while (true)
        {
            var batch = new List<string>();
            while (batch.Count < 5000 && reader.TryRead(out var p))
            {
                batch.Add(p);
            }

            if (batch.Count > 0)
            {
                yield return batch;
                continue;
            }

            if (wait.IsCompleted)
            {
                yield break;
            }

            var next = reader.WaitToReadAsync(ct).AsTask();
            await Task.WhenAny(next, wait).ConfigureAwait(false);
            if (next.IsCompleted)
            {
                // Let a burst gather for a moment: one read of 50 nodes costs about what one of a single node does.
                await Task.Delay(Gather, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>How long a first notification waits for others to read them together (well inside the 1 s goal).</summary>
    internal static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(50);

    private static async Task ReadAllAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        // No cancellation token goes into Npgsql here: cancelling a wait races with the connection's own state and
        // can throw from inside the token's callbacks (seen at shutdown). A 1 s wait, looped, stops just as well.
        var idle = 0;
        while (!ct.IsCancellationRequested)
        {
            if (await connection.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false))
            {
                idle = 0;
                continue;
            }

            if (++idle >= 30)
            {
                // 30 s without a notification: a keepalive query notices a silently dead connection.
                idle = 0;
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
                    if (!buildIds.Contains(id))
                    {
                        buildIds.Add(id);
                    }

                    break;
                case "l" when long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var id):
                    if (!logIds.Contains(id))
                    {
                        logIds.Add(id);
                    }

                    break;
                default:
                    Log.Unknown(logger, payload.Length > 100 ? payload[..100] : payload);
                    break;
            }
        }

        try
        {
            foreach (var chunk in nodes.Chunk(1000))
            {
                state.Refresh(chunk, await Task.Run(() => pg.LoadNodes(chunk, StateStore.RecentEvents)).ConfigureAwait(false));
                Applied.WithLabels("node").Inc(chunk.Length);
            }

            foreach (var id in logIds)
            {
                await Task.Run(() => logs.Refresh(id)).ConfigureAwait(false);
                Applied.WithLabels("build-log").Inc();
            }

            foreach (var id in buildIds)
            {
                await builds.RefreshAsync(id, await Task.Run(() => pg.LoadBuild(id)).ConfigureAwait(false)).ConfigureAwait(false);
                Applied.WithLabels("build").Inc();
            }
        }
        catch (StoreUnavailableException ex)
        {
            // The store went away between the notification and the read: the resync after reconnecting covers it.
            Log.ApplyFailed(logger, ex.Message);
        }
    }

    private async Task ResyncAsync(PostgresStore pg)
    {
        var all = await Task.Run(() => pg.Load(StateStore.RecentEvents)).ConfigureAwait(false);
        state.Resync(all);
        foreach (var b in all.Builds)
        {
            await builds.RefreshAsync(b.Id, b).ConfigureAwait(false);
            await Task.Run(() => logs.Refresh(b.Id)).ConfigureAwait(false);
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

        [LoggerMessage(2904, LogLevel.Warning, "changes could not be read ({Reason}); the next resync covers them")]
        public static partial void ApplyFailed(ILogger logger, string reason);
    }
}
