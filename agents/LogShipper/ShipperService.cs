using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.LogShipper.Delivery;

namespace Toolforge.Agents.LogShipper;

/// <summary>
/// The daemon: follows the journal for ever; its check `shipper.delivery`, judged every 5 s from the shipper's
/// figures, tells the coordinator how far behind delivery is.
/// </summary>
internal sealed partial class ShipperService(IOptions<ShipperOptions> options, AgentState state, TimeProvider time, ILogger<ShipperService> logger)
    : PeriodicCheck(state, time, logger)
{
    public const string Check = "shipper.delivery";
    private static readonly TimeSpan StuckAfter = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan BehindAfter = TimeSpan.FromMinutes(2);

    private readonly Shipper _shipper = new(options.Value, time, logger);

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => TimeSpan.FromSeconds(5);

    protected override TimeSpan Timeout => TimeSpan.FromSeconds(5);

    protected override Task RunOnceAsync(CancellationToken ct)
    {
        Report(_shipper.Stats);
        return Task.CompletedTask;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var shipper = _shipper;
        var run = Task.Run(async () =>
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await shipper.RunAsync(follow: true, giveUpAfter: null, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is Shipper.JournalReadFailedException or IOException or UnauthorizedAccessException)
                {
                    shipper.Stats.LastError = ex.Message;
                    Log.Restarting(logger, ex.Message);
                    await Task.Delay(TimeSpan.FromSeconds(10), Time, stoppingToken).ConfigureAwait(false);
                }
            }
        }, stoppingToken);

        try
        {
            await base.ExecuteAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        try
        {
            await run.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopped
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
            : lag > BehindAfter || !s.Connected && s.OldestWaitingMicros != 0 ? (CheckState.Warning, $"behind by {lag.TotalSeconds:0}s; {(s.Connected ? "delivering" : "not connected")}; last error: {s.LastError ?? "none"}")
            : (CheckState.Ok, $"delivering; {s.Acknowledged} acknowledged, lag {lag.TotalSeconds:0}s");
        State.SetCheck(Check, st, message, values: values, details: new Dictionary<string, string> { ["last_error"] = s.LastError ?? string.Empty });
    }

    private static partial class Log
    {
        [LoggerMessage(5101, LogLevel.Error, "shipping stopped ({Reason}); starting again in 10s")]
        public static partial void Restarting(ILogger logger, string reason);
    }
}
