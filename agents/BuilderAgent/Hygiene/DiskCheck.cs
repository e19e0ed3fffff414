using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>
/// builder.disk: the free space of the filesystem that holds <see cref="DiskOptions.Path"/> (statfs of the path itself,
/// through DriveInfo: it need only be resolvable, not readable — Docker's data-root is root's, mode 0710, and the daemon
/// runs as a dynamic user), as df shows it: Avail / (Used + Avail), blocks reserved for root not counted. Failing below
/// MinFreePercent (the alert ToolforgeBuilderDiskLow), warning below twice that; failing too when the path cannot be
/// measured (not there, not reachable): a disk check that measures nothing must not stay silent. The measure runs off
/// the check's loop, so a statfs that hangs (a dying disk) is a run that did not finish, not a check gone quiet.
/// </summary>
internal sealed class DiskCheck(IOptions<DiskOptions> options, AgentState state, TimeProvider time, ILogger<DiskCheck> logger) : PeriodicCheck(state, time, logger)
{
    public const string Check = "builder.disk";

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => options.Value.Interval;

    protected override TimeSpan Timeout => TimeSpan.FromSeconds(10);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var o = options.Value;
        var sw = Stopwatch.StartNew();
        (long Avail, long Used)? measured;
        try
        {
            measured = await Task.Run(() => Measure(o.Path), CancellationToken.None).WaitAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            State.SetCheck(Check, CheckState.Failing, $"cannot measure the filesystem of {o.Path} (Builder:Disk:Path): {ex.Message}", sw.Elapsed);
            return;
        }

        if (measured is not { } space)
        {
            State.SetCheck(Check, CheckState.Failing, $"{o.Path} (Builder:Disk:Path) is not there: set it to Docker's data-root", sw.Elapsed);
            return;
        }

        var (avail, used) = space;
        var size = avail + used;
        var percent = size > 0 ? 100.0 * avail / size : 0;
        var said = string.Create(CultureInfo.InvariantCulture, $"{Gib(avail)} GiB free of {Gib(size)} GiB ({percent:0.#} %) on the filesystem of {o.Path}");
        var (verdict, message) = percent < o.MinFreePercent
            ? (CheckState.Failing, string.Create(CultureInfo.InvariantCulture, $"{said}, below Builder:Disk:MinFreePercent ({o.MinFreePercent:0.#} %): builds and pushes will fail; remove images no longer built (`docker image ls`), lower Builder:Hygiene:CacheBudgetGiB, or grow the disk"))
            : percent < 2 * o.MinFreePercent
                ? (CheckState.Warning, string.Create(CultureInfo.InvariantCulture, $"{said}, below twice Builder:Disk:MinFreePercent ({o.MinFreePercent:0.#} %)"))
                : (CheckState.Ok, said);
        State.SetCheck(Check, verdict, message, sw.Elapsed,
            values: new Dictionary<string, double> { ["free_bytes"] = avail, ["size_bytes"] = size, ["free_percent"] = Math.Round(percent, 2) }, quiet: verdict == CheckState.Ok);
    }

    /// <summary>
    /// As df counts them for the filesystem holding <paramref name="path"/>: the bytes available to an unprivileged user
    /// and the bytes used (size less all free blocks); null when the path is not there; IOException or
    /// UnauthorizedAccessException when it cannot be reached or measured.
    /// </summary>
    public static (long Avail, long Used)? Measure(string path)
    {
        try
        {
            _ = File.GetAttributes(path); // lstat: EACCES on the way is said as such, not as "not there"
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        var drive = new DriveInfo(path);
        return (drive.AvailableFreeSpace, drive.TotalSize - drive.TotalFreeSpace);
    }

    private static string Gib(long bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("0.#", CultureInfo.InvariantCulture);
}
