using System.Diagnostics;
using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// `check` on a host that is no Kubernetes node (this test machine: no kubelet unit, no kubeconfig), with an empty
/// configuration: it answers in seconds, the cluster and kubelet checks say "not applicable" and do not fail the run,
/// every check name the daemon reports can be picked with --only, and a bad configuration is exit 78 as everywhere.
/// </summary>
public sealed class CheckOnAnyHostTests
{
    [Fact]
    public async Task OnAHostThatIsNoNode_WithNoConfiguration_NotApplicableChecksPass_InSeconds()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["empty.json"], "{}");
        var sw = Stopwatch.StartNew();
        var r = await Run.DotnetToolAsync("toolforge-node-agent",
            ["check", "--config", dir["empty.json"], "-o", "json", "--only", "kubelet.unit,kubelet.healthz,kubelet.flapping,kubelet.node-ready,kube-proxy.iptables,kube-proxy.conntrack,node.stuck-processes"]);
        sw.Stop();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10) + TimeSpan.FromSeconds(5), $"took {sw.Elapsed} (the dotnet host's start included)");
        var checks = JsonNode.Parse(r.Stdout)!["checks"]!.AsArray().ToDictionary(c => (string)c!["name"]!, c => ((string?)c!["state"], (string?)c!["message"]));
        Assert.Equal(7, checks.Count);
        foreach (var name in new[] { "kubelet.unit", "kubelet.healthz", "kubelet.node-ready", "kube-proxy.iptables", "kube-proxy.conntrack" })
        {
            Assert.Equal("n/a", checks[name].Item1);
            Assert.StartsWith("not applicable on this host", checks[name].Item2, StringComparison.Ordinal);
        }

        Assert.Equal("ok", checks["node.stuck-processes"].Item1);
        Assert.Contains("watches for 5 s", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryCheckNameTheDaemonReports_IsAcceptedByOnly()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["empty.json"], "{}");
        foreach (var name in new[] { "docker.unit", "kubelet.node-ready" })
        {
            var r = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", dir["empty.json"], "--only", name]);
            Assert.DoesNotContain("no such check here", r.Stderr, StringComparison.Ordinal);
            Assert.Contains(name, r.Stdout, StringComparison.Ordinal);
        }
    }
}
