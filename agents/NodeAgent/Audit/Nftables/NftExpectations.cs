using System.Globalization;
using System.Runtime.CompilerServices;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;
using static Toolforge.Agents.NodeAgent.Audit.Nftables.NftLayout;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// The nftables audit's first step: what kube-proxy's nftables proxier should have in one family's table (ip or ip6)
/// for the Services and EndpointSlices, from the cluster view alone: the verdict map elements, the cluster-ips set,
/// the per-service and per-endpoint chains, what each service-/local- chain picks among and where each endpoint- chain
/// DNATs. ExternalName Services and those without a cluster IP in the family expect nothing.
/// </summary>
internal static class NftExpectations
{
    /// <summary>One Service port and its names: the Service port name (findings) and the base of its chains' names.</summary>
    private readonly record struct PortNames(ServiceSpec Service, ServicePortSpec Port, string Spn, string Name, string Proto);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static NftExpected Of(string family, ClusterModel cluster, SlicesByService slicesByService, NftAuditOptions options)
    {
        var ipv6 = family == "ip6";
        var expected = new NftExpected();
        foreach (var svc in cluster.Services)
        {
            var addresses = svc.Family(ipv6);
            if (svc.Type == "ExternalName" || addresses.ClusterIP is null or "" or "None")
            {
                continue;
            }

            var cip = NftRuleset.CanonicalIP(addresses.ClusterIP);
            var slices = slicesByService.Of(svc);
            foreach (var port in svc.Ports)
            {
                var proto = port.Protocol.ToLowerInvariant();
                var names = new PortNames(svc, port, ServicePortName.Of(svc, port), NftNames.ServicePortBase(svc.Namespace, svc.Name, proto, port.Name), proto);
                ExpectPort(expected, names, addresses, cip, slices, ipv6, options);
            }
        }

        return expected;
    }

    private static void ExpectPort(NftExpected expected, PortNames port, ServiceSpec.FamilyAddresses addresses, string cip, IReadOnlyList<EndpointSliceSpec> slices,
        bool ipv6, NftAuditOptions options)
    {
        expected.Known.Add(port.Name);
        var endpointChains = EndpointChains(expected.Known, port, slices, ipv6);
        if (options.ForbidNodePorts && port.Port.NodePort > 0 && !ipv6)
        {
            expected.Findings.Add(NftAudit.Findings.NodePortForbidden(port.Spn, port.Port.NodePort));
        }

        var usable = UsableEndpoints.Of(slices, port.Port, ipv6)
            .ConvertAll(u => NftRuleset.CanonicalIP(u.Address) is var a && ReferenceEquals(a, u.Address) ? u : u with { Address = a });
        // Without a node name the audit cannot tell where an endpoint is: every usable endpoint counts as local (as in
        // the iptables audit), so a Traffic Policy Local is not taken for "no local endpoint" everywhere.
        // This node's endpoints are chosen on their own, as kube-proxy does (its ready ones, else its serving-terminating ones).
        // Only a Traffic Policy Local reads them (the destinations' drop, the local- chain): nothing to choose otherwise.
        var local = options.NodeName is null || !(port.Service.InternalTrafficLocal || port.Service.ExternalTrafficLocal) ? usable
            : UsableEndpoints.Local(slices, port.Port, options.NodeName, ipv6)
                .ConvertAll(u => NftRuleset.CanonicalIP(u.Address) is var a && ReferenceEquals(a, u.Address) ? u : u with { Address = a });
        expected.ClusterIps.Add(cip);
        Destinations(expected.Wants, port, addresses, cip, usable.Count, port.Service.InternalTrafficLocal ? local.Count : usable.Count, local.Count);
        Backends(expected, port, usable, local, endpointChains, ipv6);
    }

    /// <summary>Every endpoint's chain name (a SHA-256 each), computed once: address:port → endpoint- chain; each base name is known.</summary>
    private static Dictionary<(string, int), string> EndpointChains(HashSet<string> known, PortNames port, IReadOnlyList<EndpointSliceSpec> slices, bool ipv6)
    {
        var (svc, servicePort) = (port.Service, port.Port);
        var endpointChains = new Dictionary<(string, int), string>();
        foreach (var slice in slices.Where(s => s.IsIPv6 == ipv6))
        {
            foreach (var sp in slice.Ports.Where(p => p.Name == servicePort.Name && p.Protocol == servicePort.Protocol))
            {
                foreach (var e in slice.Endpoints)
                {
                    var address = NftRuleset.CanonicalIP(e.Address);
                    if (!endpointChains.ContainsKey((address, sp.Port)))
                    {
                        var eb = NftNames.EndpointBase(svc.Namespace, svc.Name, port.Proto, servicePort.Name, address, sp.Port);
                        endpointChains[(address, sp.Port)] = NftNames.EndpointPrefix + eb;
                        known.Add(eb);
                    }
                }
            }
        }

        return endpointChains;
    }

    /// <summary>
    /// The verdict map elements of the port's destinations: its cluster IP (to service- or, under internalTrafficPolicy
    /// Local, local-; without endpoints a reject or a drop), its external and load balancer IPs and its node port
    /// (through external-; a drop too under externalTrafficPolicy Local without a local endpoint).
    /// </summary>
    private static void Destinations(List<NftWant> wants, PortNames port, ServiceSpec.FamilyAddresses addresses, string cip, int usable, int internalUsable, int local)
    {
        var (svc, proto, name, spn) = (port.Service, port.Proto, port.Name, port.Spn);
        var p = port.Port.Port.ToString(CultureInfo.InvariantCulture);
        wants.Add(internalUsable > 0
            ? new NftWant(ServiceIps, $"{cip} . {proto} . {p}", $"goto {(svc.InternalTrafficLocal ? "local-" : "service-")}{name}", spn, ServiceDestination.ClusterIP)
            : new NftWant(NoEndpointServices, $"{cip} . {proto} . {p}", usable == 0 ? Reject : "drop", spn, ServiceDestination.ClusterIP));

        var externals = addresses.ExternalIPs.Select(ip => (Ip: NftRuleset.CanonicalIP(ip), What: ServiceDestination.ExternalIP))
            .Concat(addresses.LoadBalancerIPs.Select(ip => (Ip: NftRuleset.CanonicalIP(ip), What: ServiceDestination.LoadBalancerIP)));
        var externalDrop = svc.ExternalTrafficLocal && local == 0;
        foreach (var (ip, what) in externals)
        {
            var key = $"{ip} . {proto} . {p}";
            if (usable == 0)
            {
                wants.Add(new NftWant(NoEndpointServices, key, Reject, spn, what));
                continue;
            }

            wants.Add(new NftWant(ServiceIps, key, $"goto external-{name}", spn, what));
            if (externalDrop)
            {
                wants.Add(new NftWant(NoEndpointServices, key, "drop", spn, what));
            }

            if (what == ServiceDestination.LoadBalancerIP && svc.SourceRanges.Count > 0)
            {
                wants.Add(new NftWant(FirewallIps, key, $"goto firewall-{name}", spn, what));
            }
        }

        if (port.Port.NodePort > 0)
        {
            var key = $"{proto} . {port.Port.NodePort.ToString(CultureInfo.InvariantCulture)}";
            if (usable == 0)
            {
                wants.Add(new NftWant(NoEndpointNodeports, key, Reject, spn, ServiceDestination.NodePort));
                return;
            }

            wants.Add(new NftWant(ServiceNodeports, key, $"goto external-{name}", spn, ServiceDestination.NodePort));
            if (externalDrop)
            {
                wants.Add(new NftWant(NoEndpointNodeports, key, "drop", spn, ServiceDestination.NodePort));
            }
        }
    }

    /// <summary>Which endpoints the port's service- (and local-) chain sends to, and where each endpoint chain DNATs.</summary>
    private static void Backends(NftExpected expected, PortNames port, List<UsableEndpoint> usable, List<UsableEndpoint> local,
        Dictionary<(string, int), string> endpointChains, bool ipv6)
    {
        var (svc, spn, name) = (port.Service, port.Spn, port.Name);
        string EndpointChain(UsableEndpoint u) => endpointChains.TryGetValue((u.Address, u.Port), out var c) ? c
            : NftNames.EndpointPrefix + NftNames.EndpointBase(svc.Namespace, svc.Name, port.Proto, port.Port.Name, u.Address, u.Port);
        if (usable.Count > 0)
        {
            expected.Backends.Add(new NftChainBackends(spn, "service-" + name, usable.Select(EndpointChain).ToHashSet(StringComparer.Ordinal)));
        }

        if (local.Count > 0 && (svc.InternalTrafficLocal || svc.ExternalTrafficLocal))
        {
            expected.Backends.Add(new NftChainBackends(spn, "local-" + name, local.Select(EndpointChain).ToHashSet(StringComparer.Ordinal)));
        }

        foreach (var u in usable)
        {
            expected.Dnats[EndpointChain(u)] = (spn, ipv6 ? $"{u.Address}:{u.Port.ToString(CultureInfo.InvariantCulture)}" : u.Target);
        }
    }
}
