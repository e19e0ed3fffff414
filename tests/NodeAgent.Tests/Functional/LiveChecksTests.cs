using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The checks against real peers: iptables in a namespace, the fake API server, dockerd, sockets that hang.</summary>
public sealed partial class LiveChecksTests
{
    private static async Task<ClusterView> StartViewAsync(FakeKubeApiServer api, TempDir dir, string node = "worker-1")
    {
        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]), WatchTimeout = TimeSpan.FromSeconds(30) }, node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced, TimeSpan.FromSeconds(15)), "the view never synced: " + view.Problem);
        return view;
    }

    [Fact]
    public async Task Iptables_InANamespace_CleanThenMissingStaleAndMissingReject()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var api = await FakeKubeApiServer.StartAsync();
        using var dir = new TempDir();
        var services = new List<KubeProxyRules.Svc>
        {
            new("tool-a", "web", "10.96.10.1", "http", 8000, "TCP", ["192.168.1.10:8000", "192.168.1.11:8000"]),
            new("tool-b", "api", "10.96.10.2", string.Empty, 80, "TCP", ["192.168.1.12:80"]),
            new("tool-c", "dns", "10.96.10.3", "dns", 53, "UDP", []),
        };
        foreach (var s in services)
        {
            api.Put(FakeKubeApiServer.Service(s.Namespace, s.Name, s.ClusterIP, (s.PortName, s.Port, s.Protocol)));
            api.Put(FakeKubeApiServer.Slice(s.Namespace, s.Name, s.Endpoints.Select(e => e.Split(':')[0]).ToArray(), (s.PortName, int.Parse(s.Endpoints.FirstOrDefault()?.Split(':')[1] ?? s.Port.ToString()), s.Protocol)));
        }

        var rules = KubeProxyRules.Generate(services);
        await ns.RestoreAsync(rules);
        var view = await StartViewAsync(api, dir);
        var state = Support.State();
        var check = new IptablesAuditCheck(Support.Options(new IptablesOptions { Command = "ip", Arguments = [.. ns.SaveCommand] }),
            view, state, TimeProvider.System, NullLogger<IptablesAuditCheck>.Instance) { ConfirmRuns = 1 };

        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Ok, state.GetCheck(NatAudit.Check)!.State);
        Assert.Empty(state.GetFindings());

        // Delete tool-a/web's rule: exactly one missing-rule naming it.
        await ns.RestoreAsync(string.Join('\n', rules.Split('\n').Where(l => !l.Contains("\"tool-a/web:http cluster IP\" -m tcp --dport 8000 -j KUBE-SVC", StringComparison.Ordinal))));
        await check.RunGuardedAsync(CancellationToken.None);
        var missing = Assert.Single(state.GetFindings());
        Assert.Equal("missing-rule", missing.Kind);
        Assert.Equal("tool-a/web:http 10.96.10.1:8000/tcp", missing.Subject);
        Assert.Equal(CheckState.Failing, state.GetCheck(NatAudit.Check)!.State);

        // Back to clean, then a rule for an IP no Service has.
        await ns.RestoreAsync(rules);
        await ns.IptablesAsync("-t", "nat", "-A", "KUBE-SERVICES", "-d", "10.96.99.99/32", "-p", "tcp", "-m", "comment", "--comment", "gone/svc cluster IP", "-m", "tcp", "--dport", "80", "-j", KubeProxyNames.ServiceChain("tool-b/api", "tcp"));
        await check.RunGuardedAsync(CancellationToken.None);
        var stale = Assert.Single(state.GetFindings());
        Assert.Equal("stale-rule", stale.Kind);
        Assert.Equal("10.96.99.99:80/tcp", stale.Subject);

        // tool-c/dns has no endpoints and its REJECT goes.
        await ns.RestoreAsync(string.Join('\n', rules.Split('\n').Where(l => !l.Contains("has no endpoints", StringComparison.Ordinal))));
        await check.RunGuardedAsync(CancellationToken.None);
        var reject = Assert.Single(state.GetFindings());
        Assert.Equal("missing-reject", reject.Kind);
        Assert.StartsWith("tool-c/dns:dns", reject.Subject, StringComparison.Ordinal);
        await view.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Docker_Healthy_Down_AndHung_AreReportedDistinctly_WithinTheirTimeouts()
    {
        await using var docker = await PrivateDockerd.StartAsync();
        using var dir = new TempDir();
        DockerCheck Check(string endpoint) => new(Support.Options(new DockerOptions { Endpoint = endpoint, PingTimeout = TimeSpan.FromSeconds(1), ListTimeout = TimeSpan.FromSeconds(2) }),
            Support.State(), TimeProvider.System, NullLogger<DockerCheck>.Instance);

        var healthy = await Check(docker.Endpoint).ProbeAsync(CancellationToken.None);
        Assert.Equal(EngineCondition.Healthy, healthy.Condition);
        Assert.Contains("running", healthy.Message, StringComparison.Ordinal);

        var down = await Check("unix://" + dir["nothing.sock"]).ProbeAsync(CancellationToken.None);
        Assert.Equal(EngineCondition.Down, down.Condition);
        Assert.StartsWith("down:", down.Message, StringComparison.Ordinal);

        // A socket that accepts connections and never answers.
        using var hungSocket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        hungSocket.Bind(new UnixDomainSocketEndPoint(dir["hung.sock"]));
        hungSocket.Listen(16);
        var accepted = new List<Socket>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                try
                {
                    accepted.Add(await hungSocket.AcceptAsync());
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        });
        var sw = Stopwatch.StartNew();
        var hung = await Check("unix://" + dir["hung.sock"]).ProbeAsync(CancellationToken.None);
        Assert.Equal(EngineCondition.Hung, hung.Condition);
        Assert.Contains("/_ping did not answer within 1s", hung.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"took {sw.Elapsed}");
        foreach (var s in accepted)
        {
            s.Dispose();
        }
    }
}
