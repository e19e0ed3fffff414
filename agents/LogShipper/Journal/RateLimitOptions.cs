using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper.Journal;

public sealed class RateLimitOptions : IValidatedOptions
{
    /// <summary>0: no limit. Otherwise at most this many entries per unit per <see cref="Interval"/>.</summary>
    public int Burst { get; set; }

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<string> Validate(string section) =>
        Check.Range(section, nameof(Burst), Burst, 0, 100_000_000).Concat(Check.Positive(section, nameof(Interval), Interval));
}
