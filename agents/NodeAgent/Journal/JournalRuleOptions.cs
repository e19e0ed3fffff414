using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Journal;

/// <summary>
/// A journal rule: an "event" is counted in a window and fails above a threshold; a "condition" is set by its
/// pattern and clears on its recovery pattern or after a quiet period.
/// </summary>
public sealed class JournalRuleOptions : IValidatedOptions
{
    public string Name { get; set; } = string.Empty;

    /// <summary>event or condition.</summary>
    public string Type { get; set; } = "event";

    /// <summary>Regular expression over MESSAGE.</summary>
    public string Pattern { get; set; } = string.Empty;

    /// <summary>Only messages from these sources: unit names (kubelet.service), SYSLOG_IDENTIFIERs, or "kernel". Empty: any.</summary>
    public List<string> Sources { get; set; } = [];

    /// <summary>Events: more than this many within <see cref="Window"/> is failing (1 or more is warning).</summary>
    public int Threshold { get; set; } = 1;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Conditions: a message matching this clears it.</summary>
    public string RecoveryPattern { get; set; } = string.Empty;

    /// <summary>Conditions: cleared when nothing matched for this long (zero: only the recovery pattern clears it).</summary>
    public TimeSpan QuietPeriod { get; set; } = TimeSpan.Zero;

    /// <summary>warning or failing: the state while the rule fires.</summary>
    public string Severity { get; set; } = "failing";

    /// <summary>The Kubernetes Event reason each match of an event rule is written with (Conditions:Events); "" = the name in CamelCase.</summary>
    public string EventReason { get; set; } = string.Empty;

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (!Regex.IsMatch(Name, "^[a-z0-9][a-z0-9-]{0,63}$"))
        {
            p.Add($"{Check.Key(section, nameof(Name))}: \"{Name}\" must be lower-case letters, digits and '-'");
        }

        p.AddRange(Check.OneOf(section, nameof(Type), Type, "event", "condition"));
        p.AddRange(Check.OneOf(section, nameof(Severity), Severity, "warning", "failing"));
        p.AddRange(RegexProblem(section, nameof(Pattern), Pattern, required: true));
        p.AddRange(RegexProblem(section, nameof(RecoveryPattern), RecoveryPattern, required: false));
        p.AddRange(Check.Range(section, nameof(Threshold), Threshold, 1, 1_000_000));
        p.AddRange(Check.Positive(section, nameof(Window), Window));
        if (Type == "condition" && RecoveryPattern.Length == 0 && QuietPeriod <= TimeSpan.Zero)
        {
            p.Add($"{Check.Key(section, nameof(RecoveryPattern))}: rule \"{Name}\" is a condition and needs a RecoveryPattern or a QuietPeriod to clear");
        }

        return p;
    }

    private IEnumerable<string> RegexProblem(string section, string key, string pattern, bool required)
    {
        if (pattern.Length == 0)
        {
            if (required)
            {
                yield return $"{Check.Key(section, key)}: rule \"{Name}\" needs a pattern";
            }

            yield break;
        }

        string? error = null;
        try
        {
            _ = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException ex)
        {
            error = ex.Message;
        }

        if (error is not null)
        {
            yield return $"{Check.Key(section, key)}: rule \"{Name}\" has an invalid regular expression: {error}";
        }
    }
}
