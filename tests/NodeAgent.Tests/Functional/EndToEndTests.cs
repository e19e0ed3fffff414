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
        // A short heartbeat: an acknowledgement reaches the agent with its next report's answer.
        await using var coordinator = await CoordinatorHarness.StartAsync(editConfig: c => c["Coordinator"]!["HeartbeatInterval"] = "00:00:02");
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

        var metricsPort = Peer.FreePort();
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = metricsPort },
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

        // An admin acknowledges the missing rule (the real agentctl): it leaves `agentctl findings` and the agent's
        // alerting gauge (toolforge_findings, which ToolforgeKubeProxyRulesWrong reads) for toolforge_findings_acknowledged.
        var id = (string)findings!.First(f => (string?)f!["kind"] == "missing-rule")!["id"]!;
        var viewerAck = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "ack", id, "--for", "2h", "--reason", "tool-a is being deleted");
        Assert.Equal(1, viewerAck.ExitCode);
        Assert.Contains("needs the admin role", viewerAck.Stderr, StringComparison.Ordinal);
        var ack = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "ack", id, "--for", "2h", "--reason", "tool-a is being deleted");
        Assert.True(ack.ExitCode == 0, ack.ToString());
        Assert.Contains("acknowledged until", ack.Stdout, StringComparison.Ordinal);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string metrics = string.Empty;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            metrics = http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics").GetAwaiter().GetResult();
            return metrics.Contains("toolforge_findings_acknowledged{kind=\"missing-rule\"} 1", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(500)), "the agent never heard of the acknowledgement:\n" + metrics);
        Assert.Contains("toolforge_findings{kind=\"missing-rule\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("toolforge_findings{kind=\"stale-rule\"} 1", metrics, StringComparison.Ordinal); // the others still alert
        var hidden = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--node", node, "-o", "json");
        Assert.DoesNotContain(JsonNode.Parse(hidden.Stdout)!["findings"]!.AsArray(), f => (string?)f!["id"] == id);
        var all = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--node", node, "--all", "-o", "wide");
        Assert.Contains("by admin1.example for 1h59m: tool-a is being deleted", all.Stdout, StringComparison.Ordinal);

        var exit = await agent.StopAsync(TimeSpan.FromSeconds(10));
        Assert.True(exit == 0, $"exit {exit}: {agent.Output}");
    }
}
