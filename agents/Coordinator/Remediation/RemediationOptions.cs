using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>
/// The "Coordinator:Remediation" section: the pools whose nodes the node-agents may cordon, drain and reboot by
/// themselves, and how fast. No pool (the default): every node-agent's request for a lease is refused, so no node is
/// remediated without an admin.
/// </summary>
public sealed partial class RemediationOptions : IValidatedOptions
{
    public const string Section = "Coordinator:Remediation";

    /// <summary>Pools by name (1-63 of a-z, 0-9 and -): a node belongs to the pool one of whose patterns names it.</summary>
    public Dictionary<string, RemediationPoolOptions> Pools { get; set; } = [];

    /// <summary>The Alertmanager asked before the gated steps of a pool that sets AlertMatchers.</summary>
    public AlertmanagerOptions Alertmanager { get; set; } = new();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex PoolName();

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        problems.AddRange(Alertmanager.Validate($"{section}:{nameof(Alertmanager)}"));
        var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, pool) in Pools)
        {
            var key = $"{section}:{nameof(Pools)}:{name}";
            if (!PoolName().IsMatch(name))
            {
                problems.Add($"{key}: a pool name is 1-63 of a-z, 0-9 and - (got \"{name}\")");
            }

            problems.AddRange(pool.Validate(key));
            if (pool.AlertMatchers.Count > 0 && Alertmanager.Url.Length == 0)
            {
                problems.Add($"{key}:{nameof(RemediationPoolOptions.AlertMatchers)}: set {section}:{nameof(Alertmanager)}:{nameof(AlertmanagerOptions.Url)} too (the alerts are asked of it)");
            }

            foreach (var pattern in pool.Nodes)
            {
                if (seen.TryGetValue(pattern, out var other))
                {
                    problems.Add($"{key}:{nameof(RemediationPoolOptions.Nodes)}: \"{pattern}\" is in pool {other} too; a node belongs to one pool");
                }
                else
                {
                    seen[pattern] = name;
                }
            }
        }

        return problems;
    }
}

/// <summary>One pool: its nodes, how many may be in remediation at once, the pause between them, the lease's life.</summary>
public sealed class RemediationPoolOptions : IValidatedOptions
{
    /// <summary>Node name patterns ('*' within one label, '?'), as Coordinator:Nodes: e.g. "tools-k8s-worker-nfs-*".</summary>
    public List<string> Nodes { get; set; } = [];

    /// <summary>Nodes between cordon and healthy uncordon at once.</summary>
    public int MaxConcurrent { get; set; } = 1;

    /// <summary>The least time between one lease taken or ended in the pool and the next one taken.</summary>
    public TimeSpan MinGap { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a lease holds without being renewed: a node that died or went silent frees its place after this. It
    /// must cover a reboot (the agent renews before each step, and again when it is back).
    /// </summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>When a lease may be taken (UTC), e.g. "Mon-Fri 08:00-16:00", "daily 22:00-04:00"; none: at any time. A lease held may be renewed outside them.</summary>
    public List<string> Windows { get; set; } = [];

    /// <summary>The storm breaker's window: nodes that asked for a lease within it are the pool's candidates.</summary>
    public TimeSpan BreakerWindow { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>More candidates than this trips the breaker (no lease taken until an admin resets it).</summary>
    public int BreakerNodes { get; set; } = 3;

    /// <summary>More candidates than this share of the pool's known nodes trips the breaker too (from two candidates: one is never a storm).</summary>
    public int BreakerPercent { get; set; } = 30;

    /// <summary>
    /// Alertmanager matchers (all must match), e.g. <c>severity="critical"</c>, <c>alertname=~"Toolforge.*|NFS.*"</c>: an
    /// active alert that is neither silenced nor inhibited and matches them holds the pool's cordons and reboots. None: no
    /// such gate.
    /// </summary>
    public List<string> AlertMatchers { get; set; } = [];

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (Nodes.Count == 0)
        {
            problems.Add($"{Check.Key(section, nameof(Nodes))}: name at least one node pattern");
        }

        for (var i = 0; i < Nodes.Count; i++)
        {
            if (Nodes[i].Trim().Length == 0 || Nodes[i].Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '*' or '?')))
            {
                problems.Add($"{Check.Key(section, $"{nameof(Nodes)}:{i}")}: \"{Nodes[i]}\" is not a host name pattern (letters, digits, . - _ and the wildcards * ?)");
            }
        }

        problems.AddRange(Check.Range(section, nameof(MaxConcurrent), MaxConcurrent, 1, 1000));
        if (MinGap < TimeSpan.Zero || MinGap > Check.LongestDuration)
        {
            problems.Add($"{Check.Key(section, nameof(MinGap))}: must be 00:00:00 or more, at most {Check.LongestDuration:d\\.hh\\:mm\\:ss} (got {MinGap})");
        }

        problems.AddRange(Check.Positive(section, nameof(LeaseTtl), LeaseTtl));
        if (LeaseTtl > TimeSpan.Zero && LeaseTtl < TimeSpan.FromMinutes(1))
        {
            problems.Add($"{Check.Key(section, nameof(LeaseTtl))}: must be at least 00:01:00, to cover a step and its renewal (got {LeaseTtl})");
        }

        problems.AddRange(Check.Positive(section, nameof(BreakerWindow), BreakerWindow));
        problems.AddRange(Check.Range(section, nameof(BreakerNodes), BreakerNodes, 1, 100_000));
        problems.AddRange(Check.Range(section, nameof(BreakerPercent), BreakerPercent, 1, 100));
        for (var i = 0; i < AlertMatchers.Count; i++)
        {
            if (!AlertGate.Matcher().IsMatch(AlertMatchers[i]))
            {
                problems.Add($"{Check.Key(section, $"{nameof(AlertMatchers)}:{i}")}: \"{AlertMatchers[i]}\" is not an Alertmanager matcher such as severity=\"critical\" or alertname=~\"NFS.*\"");
            }
        }

        for (var i = 0; i < Windows.Count; i++)
        {
            if (MaintenanceWindow.Parse(Windows[i], out var problem) is null)
            {
                problems.Add($"{Check.Key(section, $"{nameof(Windows)}:{i}")}: {problem}");
            }
        }

        return problems;
    }
}
