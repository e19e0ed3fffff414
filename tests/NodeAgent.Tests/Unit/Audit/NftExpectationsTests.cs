using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>The nftables audit's first step: the map elements and chains kube-proxy's nftables proxier should write, from the cluster view alone.</summary>
public sealed class NftExpectationsTests
{
    private static readonly string Base = NftNames.ServicePortBase("tool-a", "web", "tcp", "http");

    private static ServiceSpec Web(bool internalLocal = false, bool externalLocal = false) =>
        new("tool-a", "web", "LoadBalancer", "10.96.0.10", [new ServicePortSpec("http", 80, "TCP", 30080)], ["203.0.113.5"], ["198.51.100.7"], internalLocal, externalLocal)
        {
            SourceRanges = ["192.0.2.0/24"],
            IPv6 = new ServiceSpec.FamilyAddresses("fd00::a", [], []),
        };

    private static EndpointSliceSpec Slice(string address, string node = "node-1", bool ready = true, bool ipv6 = false) =>
        new("tool-a", "web", [new EndpointSpec(address, ready, ready, false, node)], [new ServicePortSpec("http", 8080, "TCP", 0)]) { IsIPv6 = ipv6 };

    private static NftExpected Expect(ServiceSpec svc, EndpointSliceSpec[] slices, string family = "ip", NftAuditOptions? options = null) =>
        NftExpectations.Of(family, new ClusterModel([svc], slices), new SlicesByService(slices), options ?? new NftAuditOptions(NodeName: "node-1"));

    private static List<(string Map, string Key, string Verdict, ServiceDestination What)> Wants(NftExpected e) => e.Wants.Select(w => (w.Map, w.Key, w.Verdict, w.What)).ToList();

    [Fact]
    public void AServicePortWithEndpoints_WantsAnElementForEachDestination_AndItsChains()
    {
        var expected = Expect(Web(), [Slice("192.168.1.1")]);

        Assert.Equal(
            [
                ("service-ips", "10.96.0.10 . tcp . 80", $"goto service-{Base}", ServiceDestination.ClusterIP),
                ("service-ips", "203.0.113.5 . tcp . 80", $"goto external-{Base}", ServiceDestination.ExternalIP),
                ("service-ips", "198.51.100.7 . tcp . 80", $"goto external-{Base}", ServiceDestination.LoadBalancerIP),
                ("firewall-ips", "198.51.100.7 . tcp . 80", $"goto firewall-{Base}", ServiceDestination.LoadBalancerIP),
                ("service-nodeports", "tcp . 30080", $"goto external-{Base}", ServiceDestination.NodePort),
            ],
            Wants(expected));
        Assert.All(expected.Wants, w => Assert.Equal("tool-a/web:http", w.Spn));
        Assert.Equal(["10.96.0.10"], expected.ClusterIps);

        var endpointBase = NftNames.EndpointBase("tool-a", "web", "tcp", "http", "192.168.1.1", 8080);
        Assert.Equal(new[] { Base, endpointBase }.Order(StringComparer.Ordinal), expected.Known.Order(StringComparer.Ordinal));
        var backends = Assert.Single(expected.Backends);
        Assert.Equal(("tool-a/web:http", $"service-{Base}"), (backends.Spn, backends.Chain));
        Assert.Equal([NftNames.EndpointPrefix + endpointBase], backends.EndpointChains);
        Assert.Equal(("tool-a/web:http", "192.168.1.1:8080"), expected.Dnats[NftNames.EndpointPrefix + endpointBase]);
    }

    [Fact]
    public void AServicePortWithoutEndpoints_WantsRejects_AndNoBackends()
    {
        var expected = Expect(Web(), [Slice("192.168.1.1", ready: false)]);
        Assert.Equal(
            [
                ("no-endpoint-services", "10.96.0.10 . tcp . 80", "goto reject-chain", ServiceDestination.ClusterIP),
                ("no-endpoint-services", "203.0.113.5 . tcp . 80", "goto reject-chain", ServiceDestination.ExternalIP),
                ("no-endpoint-services", "198.51.100.7 . tcp . 80", "goto reject-chain", ServiceDestination.LoadBalancerIP),
                ("no-endpoint-nodeports", "tcp . 30080", "goto reject-chain", ServiceDestination.NodePort),
            ],
            Wants(expected));
        Assert.Empty(expected.Backends);
        Assert.Empty(expected.Dnats);
    }

    [Fact]
    public void TrafficPolicyLocal_WithoutALocalEndpoint_Drops()
    {
        var expected = Expect(Web(internalLocal: true, externalLocal: true), [Slice("192.168.1.1", node: "node-2")]);
        Assert.Equal(("no-endpoint-services", "drop"), (expected.Wants[0].Map, expected.Wants[0].Verdict));
        Assert.Contains(("no-endpoint-services", "203.0.113.5 . tcp . 80", "drop", ServiceDestination.ExternalIP), Wants(expected));
        Assert.Contains(("no-endpoint-nodeports", "tcp . 30080", "drop", ServiceDestination.NodePort), Wants(expected));

        // With one on this node the cluster IP goes to the local- chain, which picks among the local endpoints only.
        var local = Expect(Web(internalLocal: true), [Slice("192.168.1.1", node: "node-2"), Slice("192.168.1.2")]);
        Assert.Equal($"goto local-{Base}", local.Wants[0].Verdict);
        Assert.Equal([$"service-{Base}", $"local-{Base}"], local.Backends.Select(b => b.Chain));
        Assert.Single(local.Backends[1].EndpointChains);
    }

    /// <summary>This node's pod still serving while terminating, the ready replacements elsewhere: the local- chain, no drop (kube-proxy's CategorizeEndpoints).</summary>
    [Fact]
    public void TrafficPolicyLocal_ALocalPodStillTerminating_IsTheLocalEndpoint()
    {
        var terminating = new EndpointSliceSpec("tool-a", "web", [new EndpointSpec("192.168.1.9", false, true, true, "node-1")], [new ServicePortSpec("http", 8080, "TCP", 0)]);
        var expected = Expect(Web(internalLocal: true), [Slice("192.168.1.1", node: "node-2"), terminating]);
        Assert.Equal($"goto local-{Base}", expected.Wants[0].Verdict);
        Assert.DoesNotContain(expected.Wants, w => w.Verdict == "drop");
    }

    /// <summary>Without a node name every usable endpoint counts as local, as in the iptables audit: no drop is wanted.</summary>
    [Fact]
    public void TrafficPolicyLocal_WithoutANodeName_CountsEveryEndpointAsLocal()
    {
        var expected = Expect(Web(internalLocal: true, externalLocal: true), [Slice("192.168.1.1", node: "node-2")], options: new NftAuditOptions());
        Assert.Equal($"goto local-{Base}", expected.Wants[0].Verdict);
        Assert.DoesNotContain(expected.Wants, w => w.Verdict == "drop");
    }

    [Fact]
    public void TheIp6Table_TakesTheServicesIPv6Addresses_AndNoPolicyFinding()
    {
        var expected = Expect(Web(), [Slice("fd00:1::1", ipv6: true), Slice("192.168.1.1")], "ip6", new NftAuditOptions(ForbidNodePorts: true));
        Assert.Equal(
            [("service-ips", "fd00::a . tcp . 80", $"goto service-{Base}", ServiceDestination.ClusterIP), ("service-nodeports", "tcp . 30080", $"goto external-{Base}", ServiceDestination.NodePort)],
            Wants(expected));
        Assert.Equal("fd00:1::1:8080", Assert.Single(expected.Dnats).Value.Target);
        Assert.Empty(expected.Findings);
        Assert.Single(Expect(Web(), [], "ip", new NftAuditOptions(ForbidNodePorts: true)).Findings);
    }

    [Fact]
    public void ExternalNameServicesAndServicesWithoutAClusterIPInTheFamily_ExpectNothing()
    {
        Assert.Empty(Expect(Web() with { Type = "ExternalName" }, [Slice("192.168.1.1")]).Wants);
        Assert.Empty(Expect(Web() with { ClusterIP = "None" }, [Slice("192.168.1.1")]).Wants);
        Assert.Empty(Expect(Web() with { IPv6 = ServiceSpec.FamilyAddresses.None }, [Slice("fd00:1::1", ipv6: true)], "ip6").Wants);
    }
}
