using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>The node-state keys of the "Coordinator" section: the agents' heartbeat, when a node is missing, how long history stays, how often nodes are judged again.</summary>
public sealed class StateOptions : IValidatedOptions
{
    public const string Section = CoordinatorOptions.Section;

    /// <summary>How often agents report; sent back to them with every report.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A node with no report for this many days is "missing".</summary>
    public int MissingAfterDays { get; set; } = 3;

    /// <summary>History (state changes, resolved findings, events, builds) older than this is deleted.</summary>
    public int RetentionDays { get; set; } = 30;

    /// <summary>How often node states are re-judged (stale, missing) and metrics refreshed.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A prune of the registry (issue 27) is refused while a node-agent's image list is older than this (its runtime
    /// or the agent down): what it holds is not known. The node-agents list every NodeAgent:Images:Interval (5 min).
    /// </summary>
    public TimeSpan ImageListMaxAge { get; set; } = TimeSpan.FromMinutes(20);

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (ImageListMaxAge < TimeSpan.FromMinutes(1) || ImageListMaxAge > TimeSpan.FromDays(1))
        {
            problems.Add($"{Check.Key(section, nameof(ImageListMaxAge))}: must be between 00:01:00 and 1.00:00:00 (got {ImageListMaxAge})");
        }

        problems.AddRange(Check.Positive(section, nameof(HeartbeatInterval), HeartbeatInterval));
        problems.AddRange(Check.Positive(section, nameof(SweepInterval), SweepInterval));
        problems.AddRange(Check.Range(section, nameof(MissingAfterDays), MissingAfterDays, 1, 3650));
        problems.AddRange(Check.Range(section, nameof(RetentionDays), RetentionDays, 1, 3650));
        return problems;
    }
}
