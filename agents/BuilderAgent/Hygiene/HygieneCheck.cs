using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>builder.hygiene: the dangling images older than DanglingAfter removed every Interval, and what that reclaimed.</summary>
internal sealed partial class HygieneCheck(BuilderDocker docker, IOptions<HygieneOptions> options, AgentState state, TimeProvider time, ILogger<HygieneCheck> logger)
    : PeriodicCheck(state, time, logger)
{
    public const string Check = "builder.hygiene";

    private static readonly Counter Reclaimed = Metrics.CreateCounter(
        "toolforge_builder_reclaimed_bytes_total", "Bytes the builder's hygiene reclaimed by removing dangling images (Docker's own count).");

    private long _total;

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => options.Value.Interval;

    protected override TimeSpan Timeout => options.Value.Timeout + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var sw = Stopwatch.StartNew();
        (int Removed, long Reclaimed)? pruned;
        try
        {
            pruned = await docker.PruneDanglingImagesAsync(o.DanglingAfter, o.Timeout, ct).ConfigureAwait(false);
        }
        catch (DockerOperationException ex)
        {
            throw new PeerUnavailableException($"Docker at {docker.Endpoint}", ex.Message, ex);
        }

        if (pruned is not { } r)
        {
            State.SetCheck(Check, CheckState.Ok, $"not pruned this time: a verify or an inventory read is using images it pulled by digest ({Mib(_total)} MiB reclaimed since the daemon started)", sw.Elapsed);
            return;
        }

        Reclaimed.Inc(r.Reclaimed);
        _total += r.Reclaimed;
        if (r.Removed > 0)
        {
            Log.Pruned(logger, r.Removed, Mib(r.Reclaimed), o.DanglingAfter.TotalHours);
        }

        State.SetCheck(Check, CheckState.Ok,
            $"{r.Removed} image record(s) deleted (dangling images older than {o.DanglingAfter.TotalHours:0.#} h and their layers), {Mib(r.Reclaimed)} MiB reclaimed ({Mib(_total)} MiB since the daemon started)",
            sw.Elapsed, values: new Dictionary<string, double> { ["removed"] = r.Removed, ["reclaimed_bytes"] = r.Reclaimed, ["reclaimed_bytes_total"] = _total });
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);

    private static partial class Log
    {
        [LoggerMessage(4017, LogLevel.Information, "hygiene: {Removed} image record(s) deleted (dangling images older than {Hours} h and their layers), {MiB} MiB reclaimed")]
        public static partial void Pruned(ILogger logger, int removed, string miB, double hours);
    }
}
