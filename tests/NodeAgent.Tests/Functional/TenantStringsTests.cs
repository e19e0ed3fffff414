using System.Text.Json.Nodes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>A tenant-controlled string longer than the coordinator's limits cannot make a node invisible.</summary>
public sealed class TenantStringsTests
{
    [Fact]
    public async Task ImageUserOfTenThousandCharacters_ReportsKeepSucceeding_TheFindingIsCut_TheNodeNeverGoesStale()
    {
        const string node = "worker-long-user.example";
        await using var coordinator = await CoordinatorHarness.StartAsync(editConfig: c => c["Coordinator"]!["HeartbeatInterval"] = "00:00:02");
        await using var api = await FakeKubeApiServer.StartAsync();
        await using var docker = await PrivateDockerd.StartAsync();
        using var dir = new TempDir();

        // An image whose USER is 10,000 characters long, with a passwd line so the container really runs as it.
        var user = new string('u', 10_000);
        File.Copy("/bin/busybox", dir["busybox"]);
        Directory.CreateDirectory(dir["etc"]);
        await File.WriteAllTextAsync(dir["etc/passwd"], $"root:x:0:0::/:/bin/sh\n{user}:x:61000:61000::/:/bin/sh\n");
        await File.WriteAllTextAsync(dir["Dockerfile"],
            $"FROM scratch\nCOPY busybox /bin/busybox\nCOPY etc/passwd /etc/passwd\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nUSER {user}\n");
        await docker.DockerAsync($"build -q -t docker-registry.svc.toolforge.org/toolforge-longuser:latest {dir.Path}");
        await docker.DockerAsync("run -d --network none --name longuser --label io.kubernetes.pod.namespace=tool-long "
            + "--label io.kubernetes.pod.name=longuser-pod --label io.kubernetes.container.name=main docker-registry.svc.toolforge.org/toolforge-longuser:latest sleep 300");
        api.Put(FakeKubeApiServer.Node(node));
        api.Put(FakeKubeApiServer.Namespace("tool-long", new Dictionary<string, string> { ["toolforge.org/run-as-user"] = "52000" }));

        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Coordinator"] = coordinator.AgentSection(node),
            ["NodeAgent"] = new JsonObject
            {
                ["StateDirectory"] = dir["state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Docker"] = new JsonObject { ["Endpoint"] = docker.Endpoint, ["Interval"] = "00:00:02" },
                ["Kubernetes"] = new JsonObject { ["Kubeconfig"] = api.WriteKubeconfig(dir["kubeconfig"]) },
                ["Iptables"] = new JsonObject { ["Enabled"] = false },
                ["Journal"] = new JsonObject { ["Enabled"] = false },
                ["TenantPolicy"] = new JsonObject { ["Interval"] = "00:00:01" },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
        await using var agent = BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);

        var viewer = coordinator.AdminClient(CoordinatorHarness.Viewer);
        Finding? finding = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            try
            {
                finding = viewer.GetNode(new GetNodeRequest { Name = node }).Findings.FirstOrDefault(f => f.Kind == "wrong-user");
            }
            catch (Grpc.Core.RpcException)
            {
                finding = null;
            }

            return finding is not null;
        }, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)), "the finding never arrived: " + agent.Output);

        Assert.Equal("tool-long/longuser-pod/main", finding!.Subject);
        Assert.Contains("…[cut ", finding.Message, StringComparison.Ordinal);
        Assert.True(finding.Message.Length <= 4096);
        Assert.Contains("…[cut ", finding.Details["user"], StringComparison.Ordinal);

        // Over several heartbeats the reports keep arriving and the node is never stale.
        DateTimeOffset? last = null;
        var advanced = 0;
        for (var i = 0; i < 8; i++)
        {
            await Task.Delay(1000);
            var summary = (await viewer.GetNodeAsync(new GetNodeRequest { Name = node })).Summary;
            Assert.NotEqual(NodeState.Stale, summary.State);
            var at = summary.LastReport.ToDateTimeOffset();
            if (last is not null && at > last)
            {
                advanced++;
            }

            last = at;
        }

        Assert.True(advanced >= 2, $"last_report moved {advanced} times in 8 s");
        // What a tenant's string could cause is a refusal of the report; a slow call on a loaded machine is not that.
        var refused = agent.Output.Split('\n').Where(l => l.Contains("report to", StringComparison.Ordinal) && l.Contains("InvalidArgument", StringComparison.Ordinal)).ToList();
        Assert.True(refused.Count == 0, string.Join("\n", refused));
    }
}
