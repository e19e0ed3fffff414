using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Conntrack;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>Stale UDP conntrack entries to Services: entries put into a real kernel's table (a namespace of the test's own).</summary>
public sealed partial class ConntrackTests
{
    private const string NodeName = "tools-k8s-worker-ct";

    private static V1Node Node()
    {
        var node = FakeKubeApiServer.Node(NodeName);
        node.Status.Addresses = [new V1NodeAddress { Type = "InternalIP", Address = "172.16.0.20" }];
        return node;
    }

    private static async Task<(FakeKubeApiServer Api, ClusterView View, TempDir Dir)> ClusterAsync()
    {
        var api = await FakeKubeApiServer.StartAsync();
        api.Put(Node());
        api.Put(FakeKubeApiServer.Service("kube-system", "kube-dns", "172.30.0.10", ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")));
        api.Put(FakeKubeApiServer.Slice("kube-system", "kube-dns", ["10.180.0.1", "10.180.0.2"], ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")));
        var dir = new TempDir();
        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]) }, NodeName, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced && view.ServiceCount > 0 && view.Node is not null, TimeSpan.FromSeconds(10)));
        return (api, view, dir);
    }

    private static Task Insert(NetNamespace ns, string src, int sport, string dst, int dport, string replySrc, int replyPort) =>
        ns.RunAsync("conntrack", "-I", "-p", "udp", "-s", src, "-d", dst, "--sport", $"{sport}", "--dport", $"{dport}",
            "-r", replySrc, "-q", src, "--reply-port-src", $"{replyPort}", "--reply-port-dst", $"{sport}", "-t", "600", "-u", "ASSURED");

    private static ConntrackCheck Check(NetNamespace ns, ClusterView view, Common.Reporting.AgentState state, TimeProvider time, bool remediate) =>
        new(Support.Options(new ConntrackOptions { Command = "ip", Arguments = [.. ns.Exec("conntrack")], Remediate = remediate }),
            view, state, time, NullLogger<ConntrackCheck>.Instance);

    [Fact]
    public void Parse_ReadsBothTuplesOfIpv4AndIpv6Flows_AndSkipsWhatIsNotAFlow()
    {
        const string text = """
            ipv4     2 udp      17 119 src=10.0.0.5 dst=172.30.0.10 sport=5000 dport=53 [UNREPLIED] src=10.180.0.9 dst=10.0.0.5 sport=53 dport=5000 [ASSURED] mark=0 use=1
            ipv6     10 udp      17 29 src=fd00::5 dst=fd00:30::10 sport=41000 dport=53 src=fd00:180::1 dst=fd00::5 sport=53 dport=41000 mark=0 use=1
            ipv4     2 icmp     1 29 src=10.0.0.5 dst=10.0.0.1 type=8 code=0 id=1 src=10.0.0.1 dst=10.0.0.5 type=0 code=0 id=1 mark=0 use=1
            conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.
            """;
        var e = ConntrackEntry.Parse(text);
        Assert.Equal(2, e.Count);
        Assert.Equal(new ConntrackEntry("udp", "10.0.0.5", 5000, "172.30.0.10", 53, "10.180.0.9", 53), e[0]);
        Assert.Equal(new ConntrackEntry("udp", "fd00::5", 41000, "fd00:30::10", 53, "fd00:180::1", 53), e[1]);
        Assert.Equal("udp [fd00::5]:41000 -> [fd00:30::10]:53 (reply from [fd00:180::1]:53)", e[1].ToString());
    }

    [Fact]
    public void NodePortFlows_AreMatchedOnNodeAddressesOnly_AndTcpIsLeftToItsConnections()
    {
        var svc = FakeKubeApiServer.Service("tool-a", "game", "172.30.0.50", ("udp", 7777, "UDP"), ("tcp", 7777, "TCP"));
        svc.Spec.Type = "NodePort";
        svc.Spec.Ports[0].NodePort = 30777;
        var slice = FakeKubeApiServer.Slice("tool-a", "game", ["10.180.1.1"], ("udp", 7777, "UDP"), ("tcp", 7777, "TCP"));
        var model = new ClusterModel([ServiceSpec.From(System.Text.Json.JsonSerializer.Deserialize(k8s.KubernetesJson.Serialize(svc), KubeJson.Default.KubeService)!)],
            [EndpointSliceSpec.From(System.Text.Json.JsonSerializer.Deserialize(k8s.KubernetesJson.Serialize(slice), KubeJson.Default.KubeEndpointSlice)!)!]);
        var entries = new List<ConntrackEntry>
        {
            new("udp", "198.51.100.1", 4000, "172.16.0.20", 30777, "10.180.1.7", 7777),   // node port, gone endpoint
            new("udp", "198.51.100.1", 4001, "172.16.0.99", 30777, "10.180.1.7", 7777),   // not this node's address
            new("udp", "198.51.100.1", 4002, "172.16.0.20", 30777, "10.180.1.1", 7777),   // node port, right endpoint
            new("tcp", "198.51.100.1", 4003, "172.30.0.50", 7777, "10.180.1.7", 7777),    // TCP
        };
        var stale = Assert.Single(ConntrackAudit.Run(model, entries, ["172.16.0.20"]));
        Assert.Equal("tool-a/game:udp", stale.ServicePort);
        Assert.Equal(4000, stale.Flow.OrigSourcePort);
    }
}
