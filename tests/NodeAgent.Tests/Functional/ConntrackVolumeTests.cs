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
    private static async Task<NetNamespace> TableAsync(TempDir dir, int stale = Stale, int fine = Fine)
    {
        Peer.Require("conntrack", "conntrack");
        var ns = await NetNamespace.CreateAsync();
        var lines = new StringBuilder();
        for (var i = 0; i < stale + fine; i++)
        {
            var src = $"10.{(i >> 16) + 1}.{(i >> 8) & 255}.{i & 255}";
            var reply = i < stale ? "10.180.0.9" : "10.180.0.1";
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

    /// <summary>
    /// The README's bound for the conntrack audit's memory: the real program (`check`, run by `dotnet` with its JIT —
    /// the NativeAOT binary needs less) judges 100,000 UDP flows in a namespace's own table with its default listing
    /// bound, and its peak resident set (GNU time's maximum RSS) stays under it.
    /// </summary>
    public const int PeakRssBoundMiB = 192;

    [Fact]
    public async Task A_hundred_thousand_udp_flows_are_judged_by_the_real_program_within_the_documented_peak_rss()
    {
        Peer.Require("/usr/bin/time", "time");
        var (api, view, dir) = await ClusterAsync();
        await using var _ = api;
        using var __ = dir;
        await view.StopAsync(CancellationToken.None);
        const int flows = 100_000;
        await using var ns = await TableAsync(dir, stale: 40_000, fine: flows - 40_000);
        Assert.Equal(flows, await CountAsync(ns));

        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["Log"] = new System.Text.Json.Nodes.JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["Port"] = 0 },
            ["NodeAgent"] = new System.Text.Json.Nodes.JsonObject
            {
                ["NodeName"] = NodeName,
                ["StateDirectory"] = dir["state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Kubernetes"] = new System.Text.Json.Nodes.JsonObject { ["Kubeconfig"] = api.WriteKubeconfig(dir["kubeconfig2"]) },
                ["Conntrack"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["Command"] = "ip",
                    ["Arguments"] = new System.Text.Json.Nodes.JsonArray([.. ns.Exec("conntrack").Select(a => (System.Text.Json.Nodes.JsonNode)a)]),
                    ["Timeout"] = "00:02:00",
                },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
        var r = await Run.ProcessAsync("/usr/bin/time", ["-f", "MAXRSS_KB %M", "dotnet", Run.ToolPath("toolforge-node-agent"),
            "check", "--config", dir["node-agent.json"], "--only", ConntrackAudit.Check, "-o", "json"], TimeSpan.FromMinutes(3));
        var peakKb = long.Parse(System.Text.RegularExpressions.Regex.Match(r.Stderr, @"MAXRSS_KB (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        output.WriteLine($"check over {flows} UDP flows: exit {r.ExitCode}, peak RSS {peakKb / 1024} MiB (bound {PeakRssBoundMiB} MiB)");
        var check = System.Text.Json.Nodes.JsonNode.Parse(r.Stdout)!["checks"]!.AsArray().Single()!;
        Assert.Equal(ConntrackAudit.Check, (string?)check["name"]);
        Assert.Contains($"{flows} UDP/SCTP flows", (string?)check["message"], StringComparison.Ordinal); // every flow judged, none cut
        Assert.True(peakKb < PeakRssBoundMiB * 1024L, $"peak RSS {peakKb / 1024} MiB over the README's bound of {PeakRssBoundMiB} MiB");
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
