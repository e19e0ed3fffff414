using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>NodeAgent:Nftables: how the nftables-mode audit reads kube-proxy's tables.</summary>
public sealed class NftablesOptions() : TimedCallCheckOptions(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(20))
{
    public const string Section = "NodeAgent:Nftables";

    /// <summary>The program that lists a table as JSON (through `ip netns exec` if need be).</summary>
    public string Command { get; set; } = "nft";

    /// <summary>Lists the IPv4 table.</summary>
    public List<string> Arguments { get; set; } = ["-j", "list", "table", "ip", "kube-proxy"];

    /// <summary>Lists the IPv6 table; its absence (an IPv4-only cluster) is no problem. Empty: IPv4 only.</summary>
    public List<string> Ipv6Arguments { get; set; } = ["-j", "list", "table", "ip6", "kube-proxy"];

    /// <summary>Report every NodePort Service (Toolforge's quota keeps NodePorts at 0).</summary>
    public bool ForbidNodePorts { get; set; } = true;

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Command), Command));
        return p;
    }
}
