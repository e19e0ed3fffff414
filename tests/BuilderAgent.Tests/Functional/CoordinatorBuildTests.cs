using System.Text.Json.Nodes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>An admin's agentctl build runs on the builder daemon; viewers are refused.</summary>
[Collection("docker")]
public sealed class CoordinatorBuildTests(DockerFixture fx)
{
    [Fact]
    public async Task AdminsAgentctlBuild_RunsOnTheDaemon_AndBuildsShowsTheResult_ViewerIsRefused()
    {
        const string builderNode = CoordinatorHarness.Builder;
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;

        var refused = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build", "base-b/tools", "--push");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("permission denied", refused.Stderr, StringComparison.Ordinal);

        var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/tools", "--push");
        Assert.True(requested.ExitCode == 0, requested.ToString());
        Assert.Contains($"queued on {builderNode}", requested.Stdout, StringComparison.Ordinal);

        JsonNode? build = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json").GetAwaiter().GetResult();
            build = JsonNode.Parse(r.Stdout)?["builds"]?.AsArray().FirstOrDefault();
            return (string?)build?["state"] is "succeeded" or "failed";
        }, TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(1)), "the build did not finish: " + daemon.Output);

        Assert.Equal("succeeded", (string?)build!["state"]);
        Assert.Equal(CoordinatorHarness.Admin, (string?)build["requestedBy"]);
        Assert.Equal(builderNode, (string?)build["builder"]);
        var images = build["images"]!.AsArray();
        Assert.Equal(["base-b", "base-b/tools", "base-b/tools/cli"], images.Select(i => (string)i!["path"]!));
        Assert.All(images, i =>
        {
            Assert.Equal("pushed", (string?)i!["result"]);
            Assert.StartsWith("sha256:", (string?)i["digest"], StringComparison.Ordinal);
        });

        var table = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds");
        Assert.Contains("succeeded", table.Stdout, StringComparison.Ordinal);
        var log = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)build["id"]!);
        Assert.Contains("[base-b/tools] built ", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"[base-b/tools/cli] pushed {fx.Registry.Address}/{prefix}-base-b-tools-cli:testing", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"{prefix}-base-b-tools-cli", await fx.Registry.GetAsync("/v2/_catalog"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_TheDaemonVerifiesEachDigestItPushed_ThenPromoteMakesLatestThatDigest()
    {
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;

        var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/tools", "--push");
        Assert.True(requested.ExitCode == 0, requested.ToString());
        JsonNode? build = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json").GetAwaiter().GetResult();
            build = JsonNode.Parse(r.Stdout)?["builds"]?.AsArray().FirstOrDefault();
            return (string?)build?["state"] is "succeeded" or "failed";
        }, TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(1)), "the build did not finish: " + daemon.Output);
        Assert.True((string?)build!["state"] == "succeeded", build.ToJsonString() + daemon.Output);
        var digest = (string)build["images"]!.AsArray().Single(i => (string?)i!["path"] == "base-b/tools")!["digest"]!;

        var log = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)build["id"]!);
        Assert.Contains($"[base-b/tools] verified {digest}: the probe (/bin/sh -c 'exit 0') exited 0", log.Stdout, StringComparison.Ordinal);
        var verdicts = JsonNode.Parse(await File.ReadAllTextAsync(repo["state/verified.json"]))!["images"]!;
        Assert.Equal(digest, (string?)verdicts[$"{fx.Registry.Address}/{prefix}-base-b-tools"]!["digest"]);
        Assert.True((bool)verdicts[$"{fx.Registry.Address}/{prefix}-base-b-tools"]!["passed"]!);

        // promote, with the daemon's own configuration file, in the engine's namespace where the registry listens
        var promote = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, "dotnet", Run.ToolPath("toolforge-builder-agent"),
            "promote", "base-b/tools", "--config", repo["builder.json"]], TimeSpan.FromMinutes(2));
        Assert.True(promote.ExitCode == 0, promote.ToString());
        Assert.Contains($"promoted base-b/tools: latest → {digest}", promote.Stdout, StringComparison.Ordinal);
        var skopeo = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, Peer.Require("skopeo", "skopeo"), "inspect", "--tls-verify=false",
            "--format", "{{.Digest}}", $"docker://{fx.Registry.Address}/{prefix}-base-b-tools:latest"], TimeSpan.FromMinutes(1));
        Assert.True(skopeo.ExitCode == 0, skopeo.ToString());
        Assert.Equal(digest, skopeo.Stdout.Trim());
    }
}
