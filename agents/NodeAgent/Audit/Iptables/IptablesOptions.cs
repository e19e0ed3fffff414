using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

public sealed class IptablesOptions() : TimedCallCheckOptions(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(20))
{
    public const string Section = "NodeAgent:Iptables";

    /// <summary>The program that prints the rules: iptables-save (nft backend), iptables-legacy-save, ...</summary>
    public string Command { get; set; } = "iptables-save";

    public List<string> Arguments { get; set; } = [];

    /// <summary>
    /// Also read the other iptables backend (iptables-legacy-save when kube-proxy's is iptables-nft-save, and the other
    /// way round, found by swapping that word in Command/Arguments): KUBE-* chains there are a mixed-iptables-backends finding.
    /// </summary>
    public bool CheckOtherBackend { get; set; } = true;

    /// <summary>Report every NodePort Service (Toolforge's quota keeps NodePorts at 0).</summary>
    public bool ForbidNodePorts { get; set; } = true;

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Command), Command));
        return p;
    }
}
