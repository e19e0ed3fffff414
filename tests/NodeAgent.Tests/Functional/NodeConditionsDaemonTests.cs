using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The daemon as a process, conditions on: its checks become the Node's conditions, its journal's OOM kills one Event.</summary>
public sealed class NodeConditionsDaemonTests
{
    [Fact]
    public async Task TheDaemon_WritesItsConditions_AndFiftyOomKillsFromTheJournalAsOneEvent()
    {
        const string node = "worker-cond-daemon.example";
        await using var api = await FakeKubeApiServer.StartAsync();
        api.Put(FakeKubeApiServer.Node(node));
        using var dir = new TempDir();
        var start = DateTimeOffset.UtcNow.AddSeconds(-50);
        await JournalFiles.WriteAsync(dir["node.journal"], Enumerable.Range(0, 50).Select(i => (IReadOnlyDictionary<string, string>)JournalFiles.Entry(
            start.AddSeconds(i), node, "kernel", $"Out of memory: Killed process {2000 + i} (python3) total-vm:1000kB", 3, kernel: true)));
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["Log"] = new System.Text.Json.Nodes.JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["Port"] = 0 },
            ["NodeAgent"] = new System.Text.Json.Nodes.JsonObject
            {
                ["NodeName"] = node,
                ["StateDirectory"] = dir["state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Runtime"] = "cri",
                ["Cri"] = new System.Text.Json.Nodes.JsonObject { ["Endpoint"] = $"unix://{dir["no.sock"]}", ["Interval"] = "00:00:01" },
                ["Kubelet"] = new System.Text.Json.Nodes.JsonObject { ["HealthzUrl"] = $"http://127.0.0.1:{Peer.FreePort()}/healthz", ["Interval"] = "00:00:01" },
                ["Kubernetes"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["Kubeconfig"] = api.WriteKubeconfig(dir["kubeconfig"]),
                    ["Conditions"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = true, ["EvaluateInterval"] = "00:00:01", ["EventFlushInterval"] = "00:00:01" },
                },
                ["Iptables"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = false },
                ["Nftables"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = false },
                ["Conntrack"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = false },
                ["TenantPolicy"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = false },
                ["Journal"] = new System.Text.Json.Nodes.JsonObject { ["Files"] = new System.Text.Json.Nodes.JsonArray(dir["node.journal"]), ["EvaluateInterval"] = "00:00:01" },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
        await using var agent = BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);

        Assert.True(await Peer.EventuallyAsync(() =>
            api.GetNode(node)!.Status.Conditions.Any(c => c.Type == "KubeletUnhealthy" && c.Status == "True")
            && api.GetNode(node)!.Status.Conditions.Any(c => c.Type == "ContainerRuntimeUnhealthy" && c.Status == "True"),
            TimeSpan.FromSeconds(45), TimeSpan.FromMilliseconds(500)), agent.Output);
        Assert.True(await Peer.EventuallyAsync(() => api.Events.Any(e => e.Reason == "OOMKilling" && e.Count == 50), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500)),
            $"events: {string.Join(", ", api.Events.Select(e => $"{e.Reason}×{e.Count}"))}\n{agent.Output}");
        Assert.Single(api.Events, e => e.Reason == "OOMKilling");
        var ready = api.GetNode(node)!.Status.Conditions.Single(c => c.Type == "Ready");
        Assert.Equal("KubeletReady", ready.Reason); // someone else's: untouched
        Assert.Equal(0, await agent.StopAsync(TimeSpan.FromSeconds(10)));
    }
}
