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
        // One Timeout for the run's calls together (a prune, and over the budget a measure, a prune and a measure).
        TimeSpan Left() => o.Timeout - sw.Elapsed is var left && left > TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1);
        (int Removed, long Reclaimed)? pruned;
        try
        {
            pruned = await docker.PruneDanglingImagesAsync(o.DanglingAfter, Left(), ct).ConfigureAwait(false);
        }
        catch (DockerOperationException ex)
        {
            throw new PeerUnavailableException($"Docker at {docker.Endpoint}", ex.Message, ex);
        }

        if (pruned is not { } r)
        {
            State.SetCheck(Check, CheckState.Ok, $"not pruned this time: {Busy} ({Mib(_total)} MiB reclaimed since the daemon started)", sw.Elapsed);
            return;
        }

        Count(r.Reclaimed); // said and counted before anything else can fail
        if (r.Removed > 0)
        {
            Log.Pruned(logger, r.Removed, Mib(r.Reclaimed), o.DanglingAfter.TotalHours);
        }

        var removed = r.Removed;
        var reclaimed = r.Reclaimed;
        var values = new Dictionary<string, double>();
        string? budgetSaid = null;
        var state = CheckState.Ok;
        if (o.CacheBudgetGiB > 0)
        {
            var budget = (long)(o.CacheBudgetGiB * GiB);
            values["budget_bytes"] = budget;
            try
            {
                var usage = await docker.DiskUsageAsync(Left(), ct).ConfigureAwait(false);
                var skipped = false;
                if (usage.ImageBytes + usage.BuildCacheBytes > budget)
                {
                    // Over budget: the dangling images the age rule kept go too, down to the floor (by their Created time).
                    if (await docker.PruneDanglingImagesAsync(HygieneOptions.BudgetFloor, Left(), ct).ConfigureAwait(false) is { } more)
                    {
                        removed += more.Removed;
                        reclaimed += more.Reclaimed;
                        Count(more.Reclaimed);
                        if (more.Removed > 0)
                        {
                            Log.OverBudget(logger, more.Removed, Mib(more.Reclaimed), Gib(budget));
                        }

                        usage = await docker.DiskUsageAsync(Left(), ct).ConfigureAwait(false);
                    }
                    else
                    {
                        skipped = true;
                    }
                }

                values["image_bytes"] = usage.ImageBytes;
                values["build_cache_bytes"] = usage.BuildCacheBytes;
                var used = usage.ImageBytes + usage.BuildCacheBytes;
                var what = usage.BuildCacheBytes > 0 ? "images and build cache" : "images";
                if (used <= budget)
                {
                    budgetSaid = $"; {what} take {Gib(used)} GiB of the {Gib(budget)} GiB budget";
                }
                else if (skipped)
                {
                    state = CheckState.Warning;
                    budgetSaid = $"; {what} take {Gib(used)} GiB, over the {Gib(budget)} GiB budget (Builder:Hygiene:CacheBudgetGiB); not pruned further this time: {Busy}";
                }
                else
                {
                    state = CheckState.Warning;
                    var cache = usage.BuildCacheBytes > 0 ? $" and BuildKit's cache {Gib(usage.BuildCacheBytes)} GiB (`docker builder prune`: not the builder's own)" : string.Empty;
                    budgetSaid = $"; {what} take {Gib(used)} GiB, over the {Gib(budget)} GiB budget (Builder:Hygiene:CacheBudgetGiB) with every dangling image made more than {HygieneOptions.BudgetFloor.TotalHours:0} h ago removed: what is left is tagged images (the tree and its bases: the next build's cache){cache}; remove images no longer built (`docker image ls`) or raise the budget";
                }
            }
            catch (DockerOperationException ex)
            {
                // Not measured (the engine busy with another measure, an answer it should not give): the prune stands.
                state = CheckState.Warning;
                budgetSaid = $"; the images' size against the {Gib(budget)} GiB budget is not known this time: {ex.Message}";
            }
        }

        values["removed"] = removed;
        values["reclaimed_bytes"] = reclaimed;
        values["reclaimed_bytes_total"] = _total;
        State.SetCheck(Check, state,
            $"{removed} image record(s) deleted (dangling images older than {o.DanglingAfter.TotalHours:0.#} h{(removed > r.Removed ? $", and made more than {HygieneOptions.BudgetFloor.TotalHours:0} h ago over the budget," : string.Empty)} and their layers), {Mib(reclaimed)} MiB reclaimed ({Mib(_total)} MiB since the daemon started){budgetSaid}",
            sw.Elapsed, values: values);
    }

    private const string Busy = "a build, a verify or an inventory read is using untagged images";

    private void Count(long bytes)
    {
        Reclaimed.Inc(bytes);
        _total += bytes;
    }

    private const double GiB = 1024.0 * 1024 * 1024;

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
