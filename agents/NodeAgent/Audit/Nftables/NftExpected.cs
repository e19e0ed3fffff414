using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>What kube-proxy's nftables proxier should have written in one family's table, and what the cluster view alone shows wrong.</summary>
internal sealed class NftExpected
{
    /// <summary>The verdict map elements, in the order the Services list them.</summary>
    public List<NftWant> Wants { get; } = [];

    /// <summary>The cluster IPs (the cluster-ips set).</summary>
    public HashSet<string> ClusterIps { get; } = new(StringComparer.Ordinal);

    /// <summary>Every per-service chain and set base name (without its prefix) a Service explains.</summary>
    public HashSet<string> Known { get; } = new(StringComparer.Ordinal);

    /// <summary>Each service-/local- chain and the endpoint chains it must pick among.</summary>
    public List<NftChainBackends> Backends { get; } = [];

    /// <summary>Each endpoint- chain: its Service port and the address:port it must DNAT to.</summary>
    public Dictionary<string, (string Spn, string Target)> Dnats { get; } = new(StringComparer.Ordinal);

    /// <summary>Findings from the Services alone (nodeport-forbidden), before any rule is looked at.</summary>
    public List<Finding> Findings { get; } = [];
}
