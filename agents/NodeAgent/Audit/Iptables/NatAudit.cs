using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

public sealed record NatAuditOptions(bool ForbidNodePorts = false, string? NodeName = null, bool CheckBackends = true);

/// <summary>
/// Compares kube-proxy's rules (iptables-save) with what kube-proxy should have written for the cluster's Services:
/// <list type="bullet">
/// <item><c>missing-rule</c>: a service port with endpoints has no NAT rule for its cluster IP, external IP, load
/// balancer IP or node port;</item>
/// <item><c>wrong-target</c>: the rule is there but jumps to another service's chain;</item>
/// <item><c>missing-reject</c>: a service port without endpoints has no filter REJECT;</item>
/// <item><c>stale-rule</c>: a rule for an IP/port no Service has, a REJECT for a port that has endpoints, or NAT rules
/// for one that has none;</item>
/// <item><c>wrong-backend</c>: the KUBE-SVC chain sends traffic to endpoints other than the ready ones;</item>
/// <item><c>nodeport-forbidden</c>: a NodePort while policy keeps NodePorts at 0 (Toolforge's quota).</item>
/// </list>
/// Headless and ExternalName services expect nothing. No I/O: tests and the offline command call it directly. Three
/// steps: expect (<see cref="NatExpectations"/>, from the cluster view), index (<see cref="NatRuleIndex"/> and
/// <see cref="ServiceChainIndex"/>, from the dump), compare (<see cref="NatComparison"/>).
/// </summary>
public static class NatAudit
{
    public const string Check = "kube-proxy.iptables";

    internal static readonly FindingFactory Findings = new(Check);

    public static List<Finding> Run(ClusterModel cluster, IptablesDump dump, NatAuditOptions options)
    {
        var expected = NatExpectations.Of(cluster, dump.Names, options);
        var index = NatRuleIndex.Of(dump);
        var findings = expected.Findings;
        NatComparison.Rules(expected.Rules, index, dump, findings);
        if (options.CheckBackends)
        {
            NatComparison.Backends(expected.Backends, ServiceChainIndex.Of(dump), dump.Names, findings);
        }

        return findings;
    }
}
