using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>
/// The reading keys of the "Shipper" section of /etc/toolforge-agents/log-shipper.json: which journal, which entries,
/// the rate limit. Where the entries go is Delivery/ShipperOptions, the same section.
/// </summary>
public sealed class JournalOptions : IValidatedOptions
{
    public const string Section = "Shipper";

    /// <summary>Read these journal files instead of the system journal (re-shipping archives, tests).</summary>
    public List<string> JournalFiles { get; set; } = [];

    /// <summary>Read this journal directory instead of the system journal.</summary>
    public string JournalDirectory { get; set; } = string.Empty;

    /// <summary>Only these units (_SYSTEMD_UNIT); empty: all.</summary>
    public List<string> Units { get; set; } = [];

    /// <summary>Only these SYSLOG_IDENTIFIERs; empty: all.</summary>
    public List<string> Identifiers { get; set; } = [];

    /// <summary>Ship entries with PRIORITY at most this (0 emerg ... 7 debug).</summary>
    public int MaxPriority { get; set; } = 7;

    /// <summary>Ship kernel messages.</summary>
    public bool Kernel { get; set; } = true;

    public RateLimitOptions RateLimit { get; set; } = new();

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Range(section, nameof(MaxPriority), MaxPriority, 0, 7));
        if (JournalFiles.Count > 0 && JournalDirectory.Length > 0)
        {
            p.Add($"{Check.Key(section, nameof(JournalDirectory))}: set JournalFiles or JournalDirectory, not both");
        }

        p.AddRange(RateLimit.Validate(Check.Key(section, nameof(RateLimit))));
        return p;
    }
}
