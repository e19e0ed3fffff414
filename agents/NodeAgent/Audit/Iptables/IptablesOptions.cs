using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

public sealed class IptablesOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Iptables";

    public bool Enabled { get; set; } = true;

    /// <summary>The program that prints the rules: iptables-save (nft backend), iptables-legacy-save, ...</summary>
    public string Command { get; set; } = "iptables-save";

    public List<string> Arguments { get; set; } = [];

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Also read the other iptables backend (iptables-legacy-save when kube-proxy's is iptables-nft-save, and the other
    /// way round, found by swapping that word in Command/Arguments): KUBE-* chains there are a mixed-iptables-backends finding.
    /// </summary>
    public bool CheckOtherBackend { get; set; } = true;

    /// <summary>Report every NodePort Service (Toolforge's quota keeps NodePorts at 0).</summary>
    public bool ForbidNodePorts { get; set; } = true;

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Command), Command));
        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        p.AddRange(Check.Positive(section, nameof(Timeout), Timeout));
        return p;
    }
}
