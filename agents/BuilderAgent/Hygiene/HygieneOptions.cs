using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>
/// Builder:Hygiene (issue 27): the builder daemon cleans up after its builds — every Interval it removes the dangling
/// images (older builds of tags that moved on) older than DanglingAfter, and says what it reclaimed (check
/// builder.hygiene, metric toolforge_builder_reclaimed_bytes_total), and keeps the images and build cache under
/// CacheBudgetGiB. The containers it makes itself (verify probes,
/// inventory reads) are removed as they end, and any left behind by the builder.docker check.
/// </summary>
public sealed class HygieneOptions() : TimedCallCheckOptions(TimeSpan.FromHours(1), TimeSpan.FromMinutes(10))
{
    public const string Section = "Builder:Hygiene";

    /// <summary>A dangling image is removed once created this long ago (the last builds stay for a look).</summary>
    public TimeSpan DanglingAfter { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// The bytes the engine's images and build cache may take (GiB; 0: no budget). Over it after the age rule, every
    /// dangling image older than <see cref="BudgetFloor"/> goes too; still over, the check is a warning naming what is left.
    /// </summary>
    public double CacheBudgetGiB { get; set; } = 40;

    /// <summary>
    /// Over budget, a dangling image made (Docker's Created: when it was built, not when its tag moved on) less than this
    /// long ago still stays. Neither prune runs while a build, a verify or an inventory read uses untagged images.
    /// </summary>
    public static readonly TimeSpan BudgetFloor = TimeSpan.FromHours(1);

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        if (DanglingAfter < BudgetFloor)
        {
            yield return $"{Check.Key(section, nameof(DanglingAfter))}: must be at least 01:00:00, so the last builds stay for a look (got {DanglingAfter})";
        }

        if (!double.IsFinite(CacheBudgetGiB) || CacheBudgetGiB < 0 || CacheBudgetGiB > 1024 * 1024)
        {
            yield return $"{Check.Key(section, nameof(CacheBudgetGiB))}: must be 0 (no budget) or a size in GiB up to 1048576 (got {CacheBudgetGiB})";
        }
    }
}
