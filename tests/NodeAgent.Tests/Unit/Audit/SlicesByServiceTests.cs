using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>The EndpointSlices of each Service, grouped once for the iptables, nftables and conntrack audits.</summary>
public sealed class SlicesByServiceTests
{
    private static EndpointSliceSpec Slice(string ns, string service, string address) =>
        new(ns, service, [new EndpointSpec(address, true, true, false, "node-1")], [new ServicePortSpec("http", 8080, "TCP", 0)]);

    private static ServiceSpec Service(string ns, string name) =>
        new(ns, name, "ClusterIP", "10.96.0.1", [new ServicePortSpec("http", 80, "TCP", 0)], [], [], false, false);

    [Fact]
    public void ASliceGoesToItsService_InTheOrderListed_AndNamespacesAreKeptApart()
    {
        var a1 = Slice("tool-a", "web", "192.168.1.1");
        var b = Slice("tool-b", "web", "192.168.2.1");
        var a2 = Slice("tool-a", "web", "192.168.1.2");
        var other = Slice("tool-a", "api", "192.168.1.3");
        var slices = new SlicesByService([a1, b, a2, other]);

        Assert.Equal([a1, a2], slices.Of(Service("tool-a", "web")));
        Assert.Equal([b], slices.Of(Service("tool-b", "web")));
        Assert.Equal([other], slices.Of("tool-a", "api"));
        Assert.Equal(3, slices.Count);
    }

    [Fact]
    public void AServiceWithoutSlices_HasNone()
    {
        var slices = new SlicesByService([Slice("tool-a", "web", "192.168.1.1")]);
        Assert.Empty(slices.Of(Service("tool-a", "api")));
        Assert.Empty(slices.Of(Service("tool-b", "web")));
        Assert.Empty(new SlicesByService([]).Of("tool-a", "web"));
    }
}
