using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>The NAT audit's first step: what kube-proxy in iptables mode should have, from the cluster view alone.</summary>
public sealed class NatExpectationsTests
{
    private static readonly ServicePortSpec Http = new("http", 80, "TCP", 30080);

    private static ServiceSpec Web(string type = "LoadBalancer", string? clusterIP = "10.96.0.10", bool internalLocal = false) =>
        new("tool-a", "web", type, clusterIP, [Http], ["203.0.113.5"], ["198.51.100.7"], internalLocal, false);

    private static EndpointSliceSpec Slice(params EndpointSpec[] endpoints) => new("tool-a", "web", endpoints, [new ServicePortSpec("http", 8080, "TCP", 0)]);

    private static EndpointSpec Ready(string address, string node = "node-1") => new(address, true, true, false, node);

    private static NatExpected Expect(ServiceSpec svc, IReadOnlyList<EndpointSliceSpec> slices, NatAuditOptions? options = null) =>
        NatExpectations.Of(new ClusterModel([svc], slices), new NameTable(), options ?? new NatAuditOptions());

    [Fact]
    public void AServicePortWithEndpoints_WantsANatRuleForEachOfItsDestinations()
    {
        var expected = Expect(Web(), [Slice(Ready("192.168.1.2"), Ready("192.168.1.1"), Ready("192.168.1.2"))]);

        Assert.Equal(
            [
                (ServiceDestination.ClusterIP, "tool-a/web:http 10.96.0.10:80/tcp"),
                (ServiceDestination.ExternalIP, "tool-a/web:http 203.0.113.5:80/tcp"),
                (ServiceDestination.LoadBalancerIP, "tool-a/web:http 198.51.100.7:80/tcp"),
                (ServiceDestination.NodePort, "tool-a/web:http *:30080/tcp"),
            ],
            expected.Rules.Select(e => (e.What, e.Subject)));
        Assert.All(expected.Rules, e => Assert.True(e.WantNat));
        Assert.All(expected.Rules, e => Assert.Equal(KubeProxyNames.ServiceChain("tool-a/web:http", "tcp"), $"KUBE-SVC-{e.Hash}"));
        Assert.Equal(-1, expected.Rules[3].Key.Address); // a node port: any local address

        // Its KUBE-SVC chain must send to each endpoint once.
        var backends = Assert.Single(expected.Backends);
        Assert.Equal("tool-a/web:http", backends.ServicePortName);
        Assert.Equal(2, backends.Targets.Length);
        Assert.Empty(expected.Findings);
    }

    [Fact]
    public void AServicePortWithoutEndpoints_WantsRejects_AndNoBackends()
    {
        var expected = Expect(Web(), [Slice(new EndpointSpec("192.168.1.1", false, false, false, "node-1"))]);
        Assert.Equal(4, expected.Rules.Count);
        Assert.All(expected.Rules, e => Assert.False(e.WantNat));
        Assert.Empty(expected.Backends);
    }

    [Fact]
    public void ServingTerminatingEndpoints_CountWhenNoneIsReady()
    {
        var expected = Expect(Web(), [Slice(new EndpointSpec("192.168.1.1", false, true, true, "node-1"))]);
        Assert.All(expected.Rules, e => Assert.True(e.WantNat));
        Assert.Single(expected.Backends);
    }

    [Fact]
    public void InternalTrafficLocal_TheClusterIPWantsANatRuleOnlyWithAnEndpointOnThisNode()
    {
        var svc = Web(internalLocal: true);
        var elsewhere = Expect(svc, [Slice(Ready("192.168.1.1", "node-2"))], new NatAuditOptions(NodeName: "node-1"));
        Assert.Equal([false, true, true, true], elsewhere.Rules.Select(e => e.WantNat));
        Assert.Equal([true, false, false, false], elsewhere.Rules.Select(e => e.WantDrop)); // the cluster IP's "has no local endpoints"

        var here = Expect(svc, [Slice(Ready("192.168.1.1", "node-1"))], new NatAuditOptions(NodeName: "node-1"));
        Assert.All(here.Rules, e => Assert.True(e.WantNat));

        // Without a node name the audit cannot tell where an endpoint is: every usable endpoint counts.
        var nodeless = Expect(svc, [Slice(Ready("192.168.1.1", "node-2"))]);
        Assert.All(nodeless.Rules, e => Assert.True(e.WantNat));
    }

    /// <summary>
    /// kube-proxy chooses this node's endpoints on their own (CategorizeEndpoints): during a rollout this node's pod is
    /// still serving while terminating and its replacements are ready elsewhere — the cluster IP still goes to the local
    /// chain (a nat rule, no DROP), although that pod is not in the cluster-wide set of ready endpoints.
    /// </summary>
    [Fact]
    public void InternalTrafficLocal_ALocalPodStillTerminating_IsTheLocalEndpoint()
    {
        var terminatingHere = new EndpointSpec("192.168.1.9", false, true, true, "node-1");
        var expected = Expect(Web(internalLocal: true), [Slice(Ready("192.168.1.1", "node-2"), terminatingHere)], new NatAuditOptions(NodeName: "node-1"));
        var clusterIP = expected.Rules[0];
        Assert.Equal((ServiceDestination.ClusterIP, true, false), (clusterIP.What, clusterIP.WantNat, clusterIP.WantDrop));

        // Not serving any more: no local endpoint, the DROP.
        var gone = new EndpointSpec("192.168.1.9", false, false, true, "node-1");
        Assert.True(Expect(Web(internalLocal: true), [Slice(Ready("192.168.1.1", "node-2"), gone)], new NatAuditOptions(NodeName: "node-1")).Rules[0].WantDrop);
    }

    [Fact]
    public void HeadlessAndExternalNameServices_ExpectNothing()
    {
        Assert.Empty(Expect(Web(clusterIP: "None"), [Slice(Ready("192.168.1.1"))]).Rules);
        Assert.Empty(Expect(Web(type: "ExternalName", clusterIP: null), []).Rules);
    }

    [Fact]
    public void ANodePort_UnderForbidNodePorts_IsAFindingFromTheClusterViewAlone()
    {
        var f = Assert.Single(Expect(Web(), [], new NatAuditOptions(ForbidNodePorts: true)).Findings);
        Assert.Equal(("nodeport-forbidden", "tool-a/web:http", NatAudit.Check), (f.Kind, f.Subject, f.Check));
    }
}
