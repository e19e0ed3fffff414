using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>An expected failure of a peer is one WRN line naming it, never a stack trace.</summary>
public sealed class PeerDownTests
{
    [Fact]
    public async Task DockerStopped_IsOneWarningLine_AndNoStackTrace()
    {
        await using var docker = await PrivateDockerd.StartAsync();
        using var dir = new TempDir();
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["NodeAgent"] = new JsonObject
            {
                ["NodeName"] = "worker-docker-down.example",
                ["StateDirectory"] = dir["state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Docker"] = new JsonObject { ["Endpoint"] = docker.Endpoint, ["Interval"] = "00:00:01" },
                ["Kubernetes"] = new JsonObject { ["Enabled"] = false },
                ["Kubelet"] = new JsonObject { ["Enabled"] = false },
                ["Iptables"] = new JsonObject { ["Enabled"] = false },
                ["Journal"] = new JsonObject { ["Enabled"] = false },
                ["TenantPolicy"] = new JsonObject { ["Interval"] = "00:00:01" },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
        await using var agent = BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);
        Assert.True(await agent.WaitForOutputAsync("check docker.engine is ok", TimeSpan.FromSeconds(30)), agent.Output);
        Assert.True(await agent.WaitForOutputAsync("check tenant.policy is ok", TimeSpan.FromSeconds(30)), agent.Output);
        var before = agent.Output.Length;

        await docker.DisposeAsync(); // dockerd goes away (killed: its socket may stay behind, refusing)
        Assert.True(await agent.WaitForOutputAsync("check tenant.policy is unknown", TimeSpan.FromSeconds(30)), agent.Output);
        await Task.Delay(4000); // several more polls of both checks

        var after = agent.Output[before..].Split('\n');
        var warnings = after.Where(l => l.Contains(" WRN ", StringComparison.Ordinal)).ToList();
        // One WRN line for Docker, from whichever of its two checks met it first; the other says it at INF.
        var w = Assert.Single(warnings);
        Assert.Matches("check (docker.engine|tenant.policy) is (failing|unknown)", w);
        // A call in flight when dockerd died reads "cannot reach Docker at …: Connection reset by peer" (seen under load).
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(w, "no Docker socket at .*: is dockerd running\\?|Docker refused the connection at .*dockerd has stopped|cannot reach Docker at "), w);
        Assert.DoesNotContain(after, l => l.Contains(" ERR ", StringComparison.Ordinal) || l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        var quiet = w.Contains("docker.engine", StringComparison.Ordinal) ? "tenant.policy is unknown" : "docker.engine is failing";
        Assert.Contains(after, l => l.Contains(" INF ", StringComparison.Ordinal) && l.Contains(quiet, StringComparison.Ordinal));
    }
}
