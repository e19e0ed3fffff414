using Microsoft.Extensions.Options;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Maintenance;

/// <summary>
/// Re-judges nodes against the clock every SweepInterval (so "stale" and "missing" reach watchers without a report)
/// and, on the instance holding the sweeper lease only, exports the node metrics and, hourly, deletes history older
/// than RetentionDays.
/// </summary>
public sealed partial class Sweeper(
    StateStore state,
    BuildQueue builds,
    CoordinatorStorage storage,
    Cluster.ISweeperLease lease,
    Remediation.RemediationLeases remediation,
    StoreStartup startup,
    TimeProvider time,
    IOptions<State.StateOptions> options,
    ILogger<Sweeper> logger,
    SecurityRebuildSchedule securityRebuilds) : BackgroundService
{
    private static readonly TimeSpan RetentionEvery = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await startup.Ready.WaitAsync(stoppingToken).ConfigureAwait(false); // nothing to judge (or export) before the store is loaded
        var lastRetention = DateTimeOffset.MinValue;
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        do
        {
            var leader = await lease.HoldAsync(stoppingToken).ConfigureAwait(false);
            state.Sweep(exportMetrics: leader);
            remediation.ExportBreakers(leader); // in the background: never holds up the sweep
            var now = time.GetUtcNow();
            if (leader)
            {
                try
                {
                    await securityRebuilds.RunDueAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is System.Data.Common.DbException or StoreUnavailableException or StoreConflictException or InvalidOperationException)
                {
                    Log.ScheduleFailed(logger, ex.Message);
                }
            }

            if (leader && now - lastRetention >= RetentionEvery)
            {
                lastRetention = now;
                try
                {
                    await ApplyRetentionAsync(now).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is System.Data.Common.DbException or StoreUnavailableException or StoreConflictException or InvalidOperationException)
                {
                    Log.RetentionFailed(logger, ex);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    public async Task ApplyRetentionAsync(DateTimeOffset now)
    {
        // Each write is fenced: refused (nothing deleted) once the lease has expired or moved to another instance.
        var cutoff = now - TimeSpan.FromDays(options.Value.RetentionDays);
        var ms = cutoff.ToUnixTimeMilliseconds();
        await storage.Writer.WriteAsync(new StoreBatch([Fence(), new DeleteHistoryBefore(ms)])).ConfigureAwait(false);
        await builds.ForgetBeforeAsync(cutoff, Fence()).ConfigureAwait(false);
        await state.ForgetOldNodesAsync(Fence()).ConfigureAwait(false);
    }

    private StoreOp Fence() => lease.Fence ?? throw new StoreConflictException("the sweeper lease expired before retention ran");

    private static partial class Log
    {
        [LoggerMessage(2702, LogLevel.Warning, "the scheduled security rebuild could not be requested: {Reason}; tried again at the next sweep")]
        public static partial void ScheduleFailed(ILogger logger, string reason);

        [LoggerMessage(2701, LogLevel.Error, "retention clean-up failed; will try again in an hour")]
        public static partial void RetentionFailed(ILogger logger, Exception ex);
    }
}
