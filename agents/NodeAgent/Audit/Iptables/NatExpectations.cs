using System.Runtime.CompilerServices;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// The NAT audit's first step: what kube-proxy in iptables mode should have for each Service port, from the cluster
/// view alone. Addresses, protocols and endpoints become numbers in <paramref name="names"/> (the dump's name table,
/// so the comparison matches them without strings). Headless and ExternalName Services expect nothing.
/// </summary>
internal static class NatExpectations
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static NatExpected Of(ClusterModel cluster, NameTable names, NatAuditOptions options)
    {
        var expected = new NatExpected(cluster.Services.Count);
        var protocols = new Dictionary<string, int>(StringComparer.Ordinal);
        var slicesByService = new SlicesByService(cluster.Slices);
        foreach (var svc in cluster.Services)
        {
            if (svc.Type == "ExternalName" || svc.IsHeadless)
            {
                continue;
            }

            var hashes = svc.KubeProxyHashes;
            var slices = slicesByService.Of(svc);
            for (var p = 0; p < svc.Ports.Count; p++)
            {
                var port = svc.Ports[p];
                var protocol = KubeProxyNames.LowerProtocol(port.Protocol);
                var protocolId = protocols.TryGetValue(protocol, out var pid) ? pid : protocols[protocol] = names.GetOrAdd(protocol);
                var e = new NatExpectation
                {
                    Service = svc, Port = port, What = ServiceDestination.ClusterIP, Address = svc.ClusterIP!, Protocol = protocol, DestinationPort = port.Port,
                    Key = new DestKey(NatKeys.AddressKey(names, svc.ClusterIP!), protocolId, port.Port), Hash = hashes[p].Hash, OldHash = hashes[p].Old,
                };
                var usable = UsableEndpoints.Of(slices, port);
                // Under internalTrafficPolicy Local the cluster IP counts this node's endpoints, chosen on their own
                // (without a node name every endpoint counts as local).
                var internalUsable = svc.InternalTrafficLocal && options.NodeName is { } node ? UsableEndpoints.Local(slices, port, node).Count : usable.Count;
                ExpectPort(expected, names, options, e, usable, internalUsable);
            }
        }

        return expected;
    }

    /// <summary>
    /// One Service port: a nat rule (with endpoints) or a REJECT (without) for its cluster IP (<paramref name="clusterIP"/>,
    /// counting only this node's endpoints under internalTrafficPolicy Local), external IPs, load balancer IPs and node
    /// port; the endpoints its KUBE-SVC chain must send to.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ExpectPort(NatExpected expected, NameTable names, NatAuditOptions options, NatExpectation clusterIP, List<UsableEndpoint> usable, int internalUsable)
    {
        var (svc, port) = (clusterIP.Service, clusterIP.Port);
        if (options.ForbidNodePorts && port.NodePort > 0)
        {
            expected.Findings.Add(NatAudit.Findings.NodePortForbidden(ServicePortName.Of(svc, port), port.NodePort));
        }

        // kube-proxy's proxier: the cluster IP of a port whose endpoints are all elsewhere under internalTrafficPolicy
        // Local gets no nat rule and a filter DROP ("has no local endpoints"), not the REJECT of a port with none at all.
        var e = clusterIP with { WantNat = internalUsable > 0, WantDrop = internalUsable == 0 && usable.Count > 0 };
        expected.Rules.Add(e);
        e.WantDrop = false;
        foreach (var ip in svc.ExternalIPs)
        {
            expected.Rules.Add(e with { What = ServiceDestination.ExternalIP, Address = ip, Key = e.Key with { Address = NatKeys.AddressKey(names, ip) }, WantNat = usable.Count > 0 });
        }

        foreach (var ip in svc.LoadBalancerIPs)
        {
            expected.Rules.Add(e with { What = ServiceDestination.LoadBalancerIP, Address = ip, Key = e.Key with { Address = NatKeys.AddressKey(names, ip) }, WantNat = usable.Count > 0 });
        }

        if (port.NodePort > 0)
        {
            expected.Rules.Add(e with { What = ServiceDestination.NodePort, Address = "*", DestinationPort = port.NodePort, Key = new DestKey(-1, e.Key.Protocol, port.NodePort), WantNat = usable.Count > 0 });
        }

        if (usable.Count > 0)
        {
            var targets = new long[usable.Count];
            for (var i = 0; i < usable.Count; i++)
            {
                targets[i] = NatKeys.TargetKey(names, usable[i]);
            }

            Array.Sort(targets);
            targets = NatKeys.Distinct(targets);
            expected.Backends.Add(new NatBackends(e.Hash, svc, port, targets));
            if (e.OldHash is { } o)
            {
                expected.Backends.Add(new NatBackends(o, svc, port, targets));
            }
        }
    }
}
