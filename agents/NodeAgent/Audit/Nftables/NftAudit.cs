using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

public sealed record NftAuditOptions(bool ForbidNodePorts = false, string? NodeName = null);

/// <summary>
/// Compares kube-proxy's nftables table (ip and ip6 kube-proxy) with what its nftables proxier writes for the
/// Services and EndpointSlices, as sets: the service-ips / service-nodeports / firewall-ips elements (destination →
/// goto the Service port's chain), no-endpoint-services / no-endpoint-nodeports (→ reject-chain or drop), cluster-ips,
/// each service-/local- chain's numgen over exactly the usable endpoints, each endpoint- chain's DNAT. Findings as in
/// iptables mode (missing-rule, wrong-target, wrong-backend, missing-reject, stale-rule, nodeport-forbidden) plus
/// stale-chain: a per-service chain or affinity set no Service explains. Keyed on map contents and chain names, never
/// on rule text, element order, handles or priorities. No I/O. For each family, three steps: expect
/// (<see cref="NftExpectations"/>, from the cluster view), index (<see cref="NftRuleset"/>, the listing by family and
/// name), compare (<see cref="NftLayout"/>, then <see cref="NftComparison"/>).
/// </summary>
public static class NftAudit
{
    public const string Check = "kube-proxy.nftables";

    internal static readonly FindingFactory Findings = new(Check);

    public static List<Finding> Run(ClusterModel cluster, NftRuleset rules, NftAuditOptions options)
    {
        var findings = new List<Finding>();
        if (rules.Families.Count == 0)
        {
            findings.Add(Findings.Make("unknown-layout", Severity.Error, "kube-proxy", "nft listed no kube-proxy table: nothing here is kube-proxy's nftables layout", ("table", "kube-proxy")));
        }

        var slicesByService = new SlicesByService(cluster.Slices);
        foreach (var family in rules.Families.Order(StringComparer.Ordinal))
        {
            var expected = NftExpectations.Of(family, cluster, slicesByService, options);
            findings.AddRange(expected.Findings);
            if (!NftLayout.Compare(family, expected, rules, findings))
            {
                continue;
            }

            NftComparison.Maps(family, expected.Wants, rules, findings);
            NftComparison.ClusterIps(family, expected.ClusterIps, rules, findings);
            NftComparison.Backends(family, expected.Backends, expected.Dnats, rules, findings);
            NftComparison.StaleObjects(family, expected.Known, rules, findings);
        }

        return findings;
    }
}
