using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Conntrack;

/// <summary>NodeAgent:Conntrack: stale UDP/SCTP conntrack entries to Services.</summary>
public sealed class ConntrackOptions() : TimedCallCheckOptions(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(20))
{
    public const string Section = "NodeAgent:Conntrack";

    /// <summary>The program, and what goes before conntrack's own arguments (e.g. ip + [netns, exec, NS, conntrack]).</summary>
    public string Command { get; set; } = "conntrack";

    public List<string> Arguments { get; set; } = [];

    /// <summary>How long a flow must stay wrong before it is a finding: kube-proxy clears such entries itself first.</summary>
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Delete exactly the stale entries found (each deletion an event). Off by default.</summary>
    public bool Remediate { get; set; }

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Command), Command));
        if (GracePeriod < TimeSpan.Zero)
        {
            p.Add($"{Check.Key(section, nameof(GracePeriod))}: must not be negative (got {GracePeriod})");
        }

        return p;
    }
}
