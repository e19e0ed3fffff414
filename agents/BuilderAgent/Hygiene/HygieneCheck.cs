using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>builder.hygiene: the dangling images older than DanglingAfter removed every Interval, the images and build cache kept under CacheBudgetGiB, and what that reclaimed.</summary>
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

        var removed = r.Removed;
        var reclaimed = r.Reclaimed;
        var values = new Dictionary<string, double>();
        string? budgetSaid = null;
        var state = CheckState.Ok;
        if (o.CacheBudgetGiB > 0)
        {
            var budget = (long)(o.CacheBudgetGiB * GiB);
            var usage = await UsageAsync(o, ct).ConfigureAwait(false);
            if (usage.Images + usage.Cache > budget
                && await docker.PruneDanglingImagesAsync(HygieneOptions.BudgetFloor, o.Timeout, ct).ConfigureAwait(false) is { } more)
            {
                // Over budget: the dangling images the age rule kept go too, down to the floor.
                removed += more.Removed;
                reclaimed += more.Reclaimed;
                usage = await UsageAsync(o, ct).ConfigureAwait(false);
                if (more.Removed > 0)
                {
                    Log.OverBudget(logger, more.Removed, Mib(more.Reclaimed), Gib(budget));
                }
            }

            values["image_bytes"] = usage.Images;
            values["build_cache_bytes"] = usage.Cache;
            values["budget_bytes"] = budget;
            var used = usage.Images + usage.Cache;
            var cache = usage.Cache > 0 ? $" and BuildKit's cache {Gib(usage.Cache)} GiB (`docker builder prune`: not the builder's own)" : string.Empty;
            if (used > budget)
            {
                state = CheckState.Warning;
                budgetSaid = $"; images{(usage.Cache > 0 ? " and build cache" : string.Empty)} take {Gib(used)} GiB, over the {Gib(budget)} GiB budget (Builder:Hygiene:CacheBudgetGiB) with every dangling image older than {HygieneOptions.BudgetFloor.TotalHours:0} h removed: what is left is tagged images (the tree and its bases: the next build's cache){cache}; remove images no longer built (`docker image ls`) or raise the budget";
            }
            else
            {
                budgetSaid = $"; images{(usage.Cache > 0 ? " and build cache" : string.Empty)} take {Gib(used)} GiB of the {Gib(budget)} GiB budget";
            }
        }

        Reclaimed.Inc(reclaimed);
        _total += reclaimed;
        if (r.Removed > 0)
        {
            Log.Pruned(logger, r.Removed, Mib(r.Reclaimed), o.DanglingAfter.TotalHours);
        }

        values["removed"] = removed;
        values["reclaimed_bytes"] = reclaimed;
        values["reclaimed_bytes_total"] = _total;
        State.SetCheck(Check, state,
            $"{removed} image record(s) deleted (dangling images older than {o.DanglingAfter.TotalHours:0.#} h{(removed > r.Removed ? $", and older than {HygieneOptions.BudgetFloor.TotalHours:0} h over the budget," : string.Empty)} and their layers), {Mib(reclaimed)} MiB reclaimed ({Mib(_total)} MiB since the daemon started){budgetSaid}",
            sw.Elapsed, values: values);
    }

    private const double GiB = 1024.0 * 1024 * 1024;

    private async Task<(long Images, long Cache)> UsageAsync(HygieneOptions o, CancellationToken ct)
    {
        try
        {
            return await docker.DiskUsageAsync(o.Timeout, ct).ConfigureAwait(false);
        }
        catch (DockerOperationException ex)
        {
            throw new PeerUnavailableException($"Docker at {docker.Endpoint}", ex.Message, ex);
        }
    }

    private static string Gib(double bytes) => (bytes / GiB).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);

    private static partial class Log
    {
        [LoggerMessage(4017, LogLevel.Information, "hygiene: {Removed} image record(s) deleted (dangling images older than {Hours} h and their layers), {MiB} MiB reclaimed")]
        public static partial void Pruned(ILogger logger, int removed, string miB, double hours);

        [LoggerMessage(4019, LogLevel.Information, "hygiene: over the {BudgetGiB} GiB budget, {Removed} more image record(s) deleted (dangling images younger than the age rule), {MiB} MiB reclaimed")]
        public static partial void OverBudget(ILogger logger, int removed, string miB, string budgetGiB);
    }
}
