using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.LogShipper.Journal;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// The daemon: follows the journal for ever; its check `shipper.delivery`, judged every 5 s from the shipper's
/// figures, tells the coordinator how far behind delivery is.
/// </summary>
internal sealed partial class ShipperService(IOptions<ShipperOptions> options, IOptions<JournalOptions> journal, AgentState state, TimeProvider time, ILogger<ShipperService> logger)
    : PeriodicCheck(state, time, logger)
{
    public const string Check = "shipper.delivery";
    private static readonly TimeSpan StuckAfter = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan BehindAfter = TimeSpan.FromMinutes(2);

    private readonly Shipper _shipper = new(options.Value, journal.Value, time, logger);

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => TimeSpan.FromSeconds(5);

    protected override TimeSpan Timeout => TimeSpan.FromSeconds(5);

    protected override Task RunOnceAsync(CancellationToken ct)
    {
        Report(_shipper.Stats);
        return Task.CompletedTask;
    }

    /// <summary>One run of the shipper until it returns or throws; tests replace it to make the loop fail.</summary>
    internal Func<Shipper, CancellationToken, Task>? RunShipper { get; init; }

    /// <summary>
    /// Ships for ever beside the check. Failures the shipper expects (the journal unreadable, an I/O error saving the
    /// cursor) restart shipping after a backoff, with the check saying why; anything else is a bug: logged with its
    /// trace and thrown, which stops the daemon with exit code 1 so systemd restarts it. Never a live daemon that
    /// ships nothing.
    /// </summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var shipper = _shipper;
        var runOnce = RunShipper ?? ((s, ct) => s.RunAsync(follow: true, giveUpAfter: null, ct));
        var o = options.Value;
        var run = Task.Run(async () =>
        {
            // One ERR when shipping stops, not one per restart that fails again. A run never returns while it ships, so
            // the streak ends (without a line of its own: the shipper's 5001 says it delivers) when a run read entries
            // before it failed; a later stop is a new streak, said again.
            var streak = new RetryStreak(RetryBounds.AtLeast(o.ReconnectMin, o.ReconnectMax), Time,
                (ex, wait) => Log.Restarting(logger, ex.Message, wait.TotalSeconds),
                (_, _) => { });
            while (!stoppingToken.IsCancellationRequested)
            {
                var read = Interlocked.Read(ref shipper.Stats.Read);
                try
                {
                    await runOnce(shipper, stoppingToken).ConfigureAwait(false);
                    streak.Succeeded();
                }
                catch (Exception ex) when (ex is Shipper.JournalReadFailedException or IOException or UnauthorizedAccessException && !stoppingToken.IsCancellationRequested)
                {
                    shipper.Stats.LastError = ex.Message;
                    if (Interlocked.Read(ref shipper.Stats.Read) > read)
                    {
                        streak.Succeeded(); // it shipped for a while: that restart worked
                    }

                    await streak.WaitAsync(streak.Failed(ex), stoppingToken).ConfigureAwait(false);
                }
            }
        }, stoppingToken);

        var checks = base.ExecuteAsync(stoppingToken);
        try
        {
            await Task.WhenAny(run, checks).ConfigureAwait(false);
            if (run.IsFaulted && !stoppingToken.IsCancellationRequested)
            {
                var ex = run.Exception!.GetBaseException();
                shipper.Stats.LastError = $"{ex.GetType().Name}: {ex.Message}";
                Log.Crashed(logger, ex);
                await run.ConfigureAwait(false); // throws: the host stops, the exit code is 1
            }

            await Task.WhenAll(run, checks).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    private void Report(ShipStats s)
    {
        var now = Time.GetUtcNow();
        var lag = s.OldestWaitingMicros == 0 ? TimeSpan.Zero : now - DateTimeOffset.UnixEpoch.AddTicks(s.OldestWaitingMicros * 10);
        var values = new Dictionary<string, double>
        {
            ["lag_seconds"] = Math.Max(0, lag.TotalSeconds),
            ["read"] = s.Read,
            ["acknowledged"] = s.Acknowledged,
            ["rate_limited"] = s.RateLimited,
            ["reconnects"] = s.Reconnects,
        };
        var (st, message) =
            lag > StuckAfter ? (CheckState.Failing, $"stuck: entries wait for {lag.TotalMinutes:0} min; last error: {s.LastError ?? "none"}")
            : s.TlsProblem is { } tls ? (CheckState.Warning, $"not delivering: {tls}; retrying; behind by {lag.TotalSeconds:0}s")
            : lag > BehindAfter || !s.Connected && s.OldestWaitingMicros != 0 ? (CheckState.Warning, $"behind by {lag.TotalSeconds:0}s; {(s.Connected ? "delivering" : "not connected")}; last error: {s.LastError ?? "none"}")
            : (CheckState.Ok, $"delivering; {s.Acknowledged} acknowledged, lag {lag.TotalSeconds:0}s");
        State.SetCheck(Check, st, message, values: values, details: new Dictionary<string, string> { ["last_error"] = s.LastError ?? string.Empty });
    }

    private static partial class Log
    {
        [LoggerMessage(5101, LogLevel.Error, "shipping stopped ({Reason}); starting again in {Seconds:0.#}s")]
        public static partial void Restarting(ILogger logger, string reason, double seconds);

        [LoggerMessage(5102, LogLevel.Critical, "shipping failed unexpectedly (a bug: please report it with this trace); the daemon stops with exit code 1 so systemd starts it again")]
        public static partial void Crashed(ILogger logger, Exception ex);
    }
}
