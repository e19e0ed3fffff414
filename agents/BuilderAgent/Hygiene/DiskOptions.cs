using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>
/// Builder:Disk (issue 27): check builder.disk, the free space of the filesystem Docker keeps its images on, every
/// Interval — failing (and the ToolforgeBuilderDiskLow alert) below MinFreePercent, warning below twice that.
/// </summary>
public sealed class DiskOptions() : TimedCheckOptions(TimeSpan.FromMinutes(1))
{
    public const string Section = "Builder:Disk";

    /// <summary>A directory on that filesystem: Docker's data-root (Debian's docker.io: /var/lib/docker).</summary>
    public string Path { get; set; } = "/var/lib/docker";

    /// <summary>Below this share of the filesystem free (for unprivileged users, as df's Avail): failing.</summary>
    public double MinFreePercent { get; set; } = 10;

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        if (!System.IO.Path.IsPathFullyQualified(Path))
        {
            yield return $"{Check.Key(section, nameof(Path))}: must be an absolute path (got \"{Path}\")";
        }

        if (!double.IsFinite(MinFreePercent) || MinFreePercent <= 0 || MinFreePercent >= 50)
        {
            yield return $"{Check.Key(section, nameof(MinFreePercent))}: must be above 0 and below 50 (got {MinFreePercent})";
        }
    }
}
