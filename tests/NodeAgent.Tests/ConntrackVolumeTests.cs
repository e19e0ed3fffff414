using System.Diagnostics;
using System.Globalization;
using System.Text;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Conntrack;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;
using Xunit.Abstractions;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// A conntrack table a tenant filled with UDP flows (a namespace's own kernel table): read line by line as conntrack
/// writes it, cut at its bound, and remediated at most so many entries a run.
/// </summary>
public sealed class ConntrackVolumeTests(ITestOutputHelper output)
{
    private const string NodeName = "tools-k8s-worker-ct";
    private const int Stale = 6000;
    private const int Fine = 6000;

    private static async Task<(FakeKubeApiServer Api, ClusterView View, TempDir Dir)> ClusterAsync()
    {
        var api = await FakeKubeApiServer.StartAsync();
        var node = FakeKubeApiServer.Node(NodeName);
        node.Status.Addresses = [new V1NodeAddress { Type = "InternalIP", Address = "172.16.0.20" }];
        api.Put(node);
        api.Put(FakeKubeApiServer.Service("kube-system", "kube-dns", "172.30.0.10", ("dns", 53, "UDP")));
        api.Put(FakeKubeApiServer.Slice("kube-system", "kube-dns", ["10.180.0.1"], ("dns", 53, "UDP")));
        var dir = new TempDir();
        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]) }, NodeName, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced && view.ServiceCount > 0 && view.Node is not null, TimeSpan.FromSeconds(10)));
        return (api, view, dir);
    }

    // Stale flows answered by a gone endpoint (10.180.0.9), then fine ones answered by the endpoint, loaded at once (conntrack -R).
    private static async Task<NetNamespace> TableAsync(TempDir dir)
    {
        Peer.Require("conntrack", "conntrack");
        var ns = await NetNamespace.CreateAsync();
        var lines = new StringBuilder();
        for (var i = 0; i < Stale + Fine; i++)
        {
            var src = $"10.{(i >> 16) + 1}.{(i >> 8) & 255}.{i & 255}";
            var reply = i < Stale ? "10.180.0.9" : "10.180.0.1";
            lines.Append(CultureInfo.InvariantCulture,
                $"-I -p udp -s {src} -d 172.30.0.10 --sport 5000 --dport 53 -r {reply} -q {src} --reply-port-src 53 --reply-port-dst 5000 -t 600 -u ASSURED\n");
        }

        await File.WriteAllTextAsync(dir["flows.txt"], lines.ToString());
        await ns.RunAsync("conntrack", "-R", dir["flows.txt"]);
        return ns;
    }

    private static ConntrackCheck Check(NetNamespace ns, ClusterView view, Common.Reporting.AgentState state, TimeProvider time, bool remediate, long maxBytes = 64L << 20, int maxDeletions = 100) =>
        new(Support.Options(new ConntrackOptions { Command = "ip", Arguments = [.. ns.Exec("conntrack")], Remediate = remediate, Timeout = TimeSpan.FromSeconds(60) }),
            view, state, time, NullLogger<ConntrackCheck>.Instance) { MaxListingBytes = maxBytes, MaxDeletions = maxDeletions };

    private static async Task<int> CountAsync(NetNamespace ns) => (await ns.RunAsync("conntrack", "-C")).Stdout.Trim() is var c ? int.Parse(c, CultureInfo.InvariantCulture) : 0;

    [Fact]
    public async Task ManyUdpFlows_AreAllJudged_AndRemediationDeletesAtMostItsBoundPerRun_CountingTheRest()
    {
        var (api, view, dir) = await ClusterAsync();
        await using var _ = api;
        using var __ = dir;
        await using var ns = await TableAsync(dir);
        Assert.Equal(Stale + Fine, await CountAsync(ns));

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = Support.State(time);
        var check = Check(ns, view, state, time, remediate: true, maxDeletions: 50);
        var sw = Stopwatch.StartNew();
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        await check.RunGuardedAsync(CancellationToken.None);
        output.WriteLine($"first run: {sw.ElapsedMilliseconds} ms, {(GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1024} KiB allocated for {Stale + Fine} flows");
        var first = state.GetCheck(ConntrackAudit.Check)!;
        Assert.True(first.State == CheckState.Ok, first.Message);
        Assert.Equal($"clean: {Stale + Fine} UDP/SCTP flows; {Stale} wrong for less than 30s, left to kube-proxy so far", first.Message);

        time.Advance(TimeSpan.FromSeconds(31));
        await check.RunGuardedAsync(CancellationToken.None);
        var second = state.GetCheck(ConntrackAudit.Check)!;
        Assert.Equal(CheckState.Failing, second.State);
        Assert.Equal($"{Stale - 50} stale UDP/SCTP conntrack entries to Services; deleted 50, {Stale - 50} more left for the next run (at most 50 a run)", second.Message);
        Assert.Equal(Stale - 50, state.GetFindings(ConntrackAudit.Check).Count);
        Assert.Equal(50, state.Snapshot(out var _).Events.Count(e => e.Kind == "conntrack-deleted"));
        Assert.Equal(Stale + Fine - 50, await CountAsync(ns));
        await view.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task AListingPastItsBound_IsReadOnlyThatFar_AndTheCheckSaysSoInsteadOfClean()
    {
        var (api, view, dir) = await ClusterAsync();
        await using var _ = api;
        using var __ = dir;
        await using var ns = await TableAsync(dir);

        var state = Support.State();
        var check = Check(ns, view, state, TimeProvider.System, remediate: false, maxBytes: 100_000);
        await check.RunGuardedAsync(CancellationToken.None);
        var result = state.GetCheck(ConntrackAudit.Check)!;
        Assert.True(result.State == CheckState.Warning, result.Message);
        Assert.Contains("the udp listing passed 100000 bytes and was read only that far", result.Message, StringComparison.Ordinal);
        Assert.InRange(result.Values["flows"], 300, 700); // about 170 bytes a flow
        await view.StopAsync(CancellationToken.None);
    }
}
