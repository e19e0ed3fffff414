using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>
/// builder.disk: the free space of the filesystem that holds <see cref="DiskOptions.Path"/> (statvfs, through
/// DriveInfo: the path need only be resolvable, not readable — Docker's data-root is root's, mode 0710, and the daemon
/// runs as a dynamic user). Failing below MinFreePercent (the alert ToolforgeBuilderDiskLow), warning below twice that;
/// unknown when the path is not there (a data-root elsewhere: set Builder:Disk:Path).
/// </summary>
internal sealed class DiskCheck(IOptions<DiskOptions> options, AgentState state, TimeProvider time, ILogger<DiskCheck> logger) : PeriodicCheck(state, time, logger)
{
    public const string Check = "builder.disk";

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => options.Value.Interval;

    protected override TimeSpan Timeout => TimeSpan.FromSeconds(10);

    protected override Task RunOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var sw = Stopwatch.StartNew();
        (long Free, long Size)? measured;
        try
        {
            measured = Measure(o.Path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            State.SetCheck(Check, CheckState.Unknown, $"cannot measure the filesystem of {o.Path}: {ex.Message}", sw.Elapsed);
            return Task.CompletedTask;
        }

        if (measured is not { } space)
        {
            State.SetCheck(Check, CheckState.Unknown, $"{o.Path} (Builder:Disk:Path) is not there: set it to Docker's data-root", sw.Elapsed);
            return Task.CompletedTask;
        }

        var (free, size) = space;
        var percent = size > 0 ? 100.0 * free / size : 0;
        var said = string.Create(CultureInfo.InvariantCulture, $"{Gib(free)} GiB free of {Gib(size)} GiB ({percent:0.#} %) on the filesystem of {o.Path}");
        var (verdict, message) = percent < o.MinFreePercent
            ? (CheckState.Failing, string.Create(CultureInfo.InvariantCulture, $"{said}, below Builder:Disk:MinFreePercent ({o.MinFreePercent:0.#} %): builds and pushes will fail; remove images no longer built (`docker image ls`), lower Builder:Hygiene:CacheBudgetGiB, or grow the disk"))
            : percent < 2 * o.MinFreePercent
                ? (CheckState.Warning, string.Create(CultureInfo.InvariantCulture, $"{said}, below twice Builder:Disk:MinFreePercent ({o.MinFreePercent:0.#} %)"))
                : (CheckState.Ok, said);
        State.SetCheck(Check, verdict, message, sw.Elapsed,
            values: new Dictionary<string, double> { ["free_bytes"] = free, ["size_bytes"] = size, ["free_percent"] = Math.Round(percent, 2) }, quiet: verdict == CheckState.Ok);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The bytes available to an unprivileged user and the filesystem's size, for the filesystem holding
    /// <paramref name="path"/>; null when the path is not there; IOException when it cannot be measured.
    /// </summary>
    public static (long Free, long Size)? Measure(string path)
    {
        if (!Directory.Exists(path) && !File.Exists(path))
        {
            return null;
        }

        var drive = new DriveInfo(path);
        return (drive.AvailableFreeSpace, drive.TotalSize);
    }

    private static string Gib(long bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("0.#", CultureInfo.InvariantCulture);
}
