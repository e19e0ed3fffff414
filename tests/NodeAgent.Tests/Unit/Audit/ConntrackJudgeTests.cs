using Toolforge.Agents.NodeAgent.Audit.Conntrack;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>The conntrack audit's judge: a UDP/SCTP flow to a Service destination whose reply is not from a usable endpoint is stale.</summary>
public sealed class ConntrackJudgeTests
{
    private static readonly ClusterModel Cluster = new(
        [
            new ServiceSpec("tool-a", "dns", "NodePort", "10.96.0.10", [new ServicePortSpec("dns", 53, "UDP", 30053), new ServicePortSpec("http", 80, "TCP", 0)], ["203.0.113.5"], [], false, false),
            new ServiceSpec("tool-a", "empty", "ClusterIP", "10.96.0.11", [new ServicePortSpec(string.Empty, 53, "UDP", 0)], [], [], false, false),
        ],
        [new EndpointSliceSpec("tool-a", "dns", [new EndpointSpec("192.168.1.1", true, true, false, "node-1")], [new ServicePortSpec("dns", 5353, "UDP", 0)])]);

    private static readonly Func<ConntrackEntry, StaleFlow?> Judge = ConntrackAudit.Judge(Cluster, ["10.0.0.1"]);

    private static ConntrackEntry Flow(string destination, int port, string replyFrom, int replyPort, string protocol = "udp") =>
        new(protocol, "10.0.0.5", 5000, destination, port, replyFrom, replyPort);

    [Fact]
    public void AReplyFromAUsableEndpoint_IsNotStale_AtAnyOfTheServicesDestinations()
    {
        Assert.Null(Judge(Flow("10.96.0.10", 53, "192.168.1.1", 5353)));
        Assert.Null(Judge(Flow("203.0.113.5", 53, "192.168.1.1", 5353)));
        Assert.Null(Judge(Flow("10.0.0.1", 30053, "192.168.1.1", 5353)));
    }

    [Fact]
    public void AReplyFromElsewhere_OrAPortWithoutEndpoints_IsStale_NamingTheServicePort()
    {
        var s = Judge(Flow("10.96.0.10", 53, "192.168.9.9", 5353));
        Assert.Equal("tool-a/dns:dns", s!.ServicePort);
        Assert.Equal("its reply comes from 192.168.9.9:5353, not from an endpoint of tool-a/dns:dns (192.168.1.1:5353)", s.Why);
        Assert.Equal("tool-a/dns:dns", Judge(Flow("10.0.0.1", 30053, "192.168.9.9", 5353))!.ServicePort);

        var none = Judge(Flow("10.96.0.11", 53, "192.168.1.1", 53));
        Assert.Equal(("tool-a/empty", "tool-a/empty has no endpoint"), (none!.ServicePort, none.Why));
    }

    [Fact]
    public void TcpFlows_FlowsToNoService_AndNodePortsOnOtherAddresses_AreNotJudged()
    {
        Assert.Null(Judge(Flow("10.96.0.10", 80, "192.168.9.9", 80, "tcp")));
        Assert.Null(Judge(Flow("10.96.0.99", 53, "192.168.9.9", 53)));
        Assert.Null(Judge(Flow("10.0.0.2", 30053, "192.168.9.9", 5353)));
    }
}
