using System.Text.Json.Nodes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The node-agent daemon (as a process) reports to a real coordinator; agentctl shows its findings.</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task NodeAgent_ReportsToTheCoordinator_AndAgentctlFindingsListsItsFindings()
    {
        const string node = "worker-7.example";
        await using var coordinator = await CoordinatorHarness.StartAsync();
        await using var api = await FakeKubeApiServer.StartAsync();
        await using var ns = await NetNamespace.CreateAsync();
        await using var docker = await PrivateDockerd.StartAsync();
        using var dir = new TempDir();

        api.Put(FakeKubeApiServer.Node(node));
        var svc = new KubeProxyRules.Svc("tool-a", "web", "10.96.20.1", "http", 8000, "TCP", ["192.168.2.10:8000"]);
        api.Put(FakeKubeApiServer.Service(svc.Namespace, svc.Name, svc.ClusterIP, (svc.PortName, svc.Port, svc.Protocol)));
        api.Put(FakeKubeApiServer.Slice(svc.Namespace, svc.Name, ["192.168.2.10"], (svc.PortName, 8000, svc.Protocol)));
        // kube-proxy "forgot" the Service: its rule is missing on this node.
        await ns.RestoreAsync(KubeProxyRules.Generate([svc with { Endpoints = [] }]).Replace("has no endpoints", "left over", StringComparison.Ordinal));
        await JournalFiles.WriteAsync(dir["node.journal"], [JournalFiles.Entry(DateTimeOffset.UtcNow.AddMinutes(-1), node, "kernel", "INFO: task kworker/0:1:42 blocked for more than 120 seconds.", 3, kernel: true)]);

        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Coordinator"] = coordinator.AgentSection(node),
            ["NodeAgent"] = new JsonObject
            {
                ["StateDirectory"] = dir["state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Kubelet"] = new JsonObject { ["HealthzUrl"] = $"http://127.0.0.1:{Peer.FreePort()}/healthz", ["Interval"] = "00:00:02" },
                ["Docker"] = new JsonObject { ["Endpoint"] = docker.Endpoint, ["Interval"] = "00:00:02" },
                ["Kubernetes"] = new JsonObject { ["Kubeconfig"] = api.WriteKubeconfig(dir["kubeconfig"]) },
                ["Iptables"] = new JsonObject { ["Command"] = "ip", ["Arguments"] = new JsonArray(ns.SaveCommand.Select(a => (JsonNode)a).ToArray()), ["Interval"] = "00:00:01" },
                ["Journal"] = new JsonObject { ["Files"] = new JsonArray(dir["node.journal"]), ["EvaluateInterval"] = "00:00:01" },
                ["TenantPolicy"] = new JsonObject { ["Interval"] = "00:00:02" },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
        await using var agent = BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);

        JsonArray? findings = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--node", node, "-o", "json").GetAwaiter().GetResult();
            findings = r.ExitCode == 0 ? JsonNode.Parse(r.Stdout)?["findings"]?.AsArray() : null;
            return findings is not null && findings.Any(f => (string?)f!["kind"] == "missing-rule") && findings.Any(f => (string?)f!["kind"] == "journal-rule");
        }, TimeSpan.FromSeconds(45), TimeSpan.FromSeconds(1)), "no findings arrived: " + agent.Output);

        Assert.Contains(findings!, f => (string?)f!["kind"] == "missing-rule" && (string?)f["subject"] == "tool-a/web:http 10.96.20.1:8000/tcp");
        Assert.Contains(findings!, f => (string?)f!["kind"] == "stale-rule"); // the left-over REJECT for a port that has endpoints
        Assert.Contains(findings!, f => (string?)f!["kind"] == "journal-rule" && (string?)f["subject"] == "hung-task");

        var table = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--node", node);
        Assert.Contains("missing-rule", table.Stdout, StringComparison.Ordinal);
        var detail = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "node", node, "-o", "json");
        var checks = JsonNode.Parse(detail.Stdout)!["checks"]!.AsArray();
        Assert.Contains(checks, c => (string?)c!["name"] == "docker.engine" && (string?)c["state"] == "ok");
        Assert.Contains(checks, c => (string?)c!["name"] == "kubelet.healthz" && (string?)c["state"] == "failing");
        Assert.Contains(checks, c => (string?)c!["name"] == "kubelet.unit" && (string?)c["state"] == "unknown");
        Assert.Contains(checks, c => (string?)c!["name"] == "kubelet.node-ready" && (string?)c["state"] == "ok");
        var nodes = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes");
        Assert.Contains("failing", nodes.Stdout.Split('\n').Single(l => l.StartsWith(node, StringComparison.Ordinal)), StringComparison.Ordinal);

        var exit = await agent.StopAsync(TimeSpan.FromSeconds(10));
        Assert.True(exit == 0, $"exit {exit}: {agent.Output}");
    }
}
