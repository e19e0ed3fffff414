using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// NodeAgent:Remediation:Drain: cordon this node and evict its pods through the Eviction API, honouring
/// PodDisruptionBudgets, then say what kept it from emptying. Off by default; nothing triggers a drain yet (the
/// remediation ladder of issue 26 will), so Enabled only lets the engine act when asked.
/// </summary>
public sealed class DrainOptions : IValidatedOptions
{
    public bool Enabled { get; set; }

    /// <summary>How long evicting and waiting may take before a drain that has not emptied the node ends (blocked or slow).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often the pods are listed again and refused evictions retried (kubectl drain retries every 5 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The grace period given to each evicted pod, in seconds; -1 (the default) leaves each pod its own terminationGracePeriodSeconds.</summary>
    public int GracePeriodSeconds { get; set; } = -1;

    /// <summary>A Terminating pod past its deletion deadline for this long, with processes in D on a network mount seen by this agent, is stuck (a reboot candidate).</summary>
    public TimeSpan StuckAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How many times a cordon or uncordon refused with 409 Conflict is tried again (reading the Node each time).</summary>
    public int ConflictRetries { get; set; } = 5;

    /// <summary>Pods asked for per list page (limit/continue).</summary>
    public int PageSize { get; set; } = 500;

    /// <summary>A node with more pods than this is not drained (the list would not be bounded).</summary>
    public int MaxPods { get; set; } = 1000;

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Positive(section, nameof(Timeout), Timeout));
        p.AddRange(Check.Positive(section, nameof(PollInterval), PollInterval));
        p.AddRange(Check.Positive(section, nameof(StuckAfter), StuckAfter));
        if (GracePeriodSeconds < -1)
        {
            p.Add($"{Check.Key(section, nameof(GracePeriodSeconds))}: must be -1 (each pod's own) or a number of seconds (got {GracePeriodSeconds})");
        }

        if (ConflictRetries is < 0 or > 100)
        {
            p.Add($"{Check.Key(section, nameof(ConflictRetries))}: must be between 0 and 100 (got {ConflictRetries})");
        }

        if (PageSize is < 1 or > 5000)
        {
            p.Add($"{Check.Key(section, nameof(PageSize))}: must be between 1 and 5000 (got {PageSize})");
        }

        if (MaxPods < 1)
        {
            p.Add($"{Check.Key(section, nameof(MaxPods))}: must be at least 1 (got {MaxPods})");
        }

        return p;
    }
}
