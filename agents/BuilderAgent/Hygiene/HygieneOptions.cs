using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Hygiene;

/// <summary>
/// Builder:Hygiene (issue 27): the builder daemon cleans up after its builds — every Interval it removes the dangling
/// images (older builds of tags that moved on) older than DanglingAfter, and says what it reclaimed (check
/// builder.hygiene, metric toolforge_builder_reclaimed_bytes_total). The containers it makes itself (verify probes,
/// inventory reads) are removed as they end, and any left behind by the builder.docker check.
/// </summary>
public sealed class HygieneOptions() : TimedCallCheckOptions(TimeSpan.FromHours(1), TimeSpan.FromMinutes(10))
{
    public const string Section = "Builder:Hygiene";

    /// <summary>A dangling image is removed once created this long ago (the last builds stay for a look).</summary>
    public TimeSpan DanglingAfter { get; set; } = TimeSpan.FromHours(24);

    protected override IEnumerable<string> ValidateCheck(string section) =>
        DanglingAfter < TimeSpan.FromHours(1) ? [$"{Check.Key(section, nameof(DanglingAfter))}: must be at least 01:00:00, so the last builds stay for a look (got {DanglingAfter})"] : [];
}
