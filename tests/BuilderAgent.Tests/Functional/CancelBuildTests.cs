using System.Diagnostics;
using System.Text.Json.Nodes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// `agentctl build cancel` against the real builder daemon and dockerd: a build waiting behind another on the builder
/// ends cancelled without starting; the running one (a RUN step sleeping 10 minutes) is stopped within seconds, and
/// both end CANCELLED with who asked and why in their log.
/// </summary>
[Collection("docker")]
public sealed class CancelBuildTests(DockerFixture fx, Xunit.Abstractions.ITestOutputHelper output)
{
    private static async Task<JsonNode?> BuildAsync(CoordinatorHarness coordinator, string id) =>
        JsonNode.Parse((await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json")).Stdout)?["builds"]?.AsArray()
            .FirstOrDefault(b => (string?)b!["id"] == id);

    private static string IdOf(ProcessResult requested) =>
        System.Text.RegularExpressions.Regex.Match(requested.Stdout, @"^build (\d+) ").Groups[1].Value;

    [Fact]
    public async Task A_waiting_build_never_starts_and_a_running_one_stops_within_seconds()
    {
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        Directory.CreateDirectory(repo["base-b/slow"]);
        await File.WriteAllTextAsync(repo["base-b/slow/Dockerfile.template"], """
            FROM {{registry}}/{{image_prefix}}-base-b:{{tag}}
            RUN ["/bin/busybox", "sh", "-c", "echo the slow step starts; sleep 600"]
            """);
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;

        var slow = IdOf(await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/slow"));
        var waiting = IdOf(await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/tools"));
        Assert.True(await Peer.EventuallyAsync(() =>
            coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", slow).GetAwaiter().GetResult().Stdout.Contains("the slow step starts", StringComparison.Ordinal),
            TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(1)), "the slow step never started: " + daemon.Output);

        // The second one waits behind the first on the builder (handed over, not started): it ends without starting.
        var refused = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build", "cancel", waiting);
        Assert.Equal(1, refused.ExitCode);
        var asked = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "cancel", waiting, "--reason", "not needed");
        Assert.True(asked.ExitCode == 0, asked.ToString());
        Assert.Contains("asked to stop", asked.Stdout, StringComparison.Ordinal);

        var sw = Stopwatch.StartNew();
        var stop = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "cancel", slow, "--reason", "wrong base");
        Assert.True(stop.ExitCode == 0, stop.ToString());
        JsonNode? ended = null;
        Assert.True(await Peer.EventuallyAsync(() => (string?)(ended = BuildAsync(coordinator, slow).GetAwaiter().GetResult())?["state"] == "cancelled",
            TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(500)), $"still {ended?["state"]}: " + daemon.Output);
        output.WriteLine($"the running build ended cancelled {sw.Elapsed.TotalSeconds:0.0} s after its cancel");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60)); // the 600 s step did not run on (a bound for a loaded machine; the figure is printed)
        Assert.Equal(CoordinatorHarness.Admin, (string?)ended!["cancelRequestedBy"]);
        Assert.Contains("cancelled by admin1.example: wrong base; stopped", (await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", slow)).Stdout, StringComparison.Ordinal);
        // dockerd stopped the step: no container of the build is left running `sleep 600`.
        Assert.Equal(string.Empty, (await fx.Docker.DockerAsync("ps -q")).Trim());

        Assert.True(await Peer.EventuallyAsync(() => (string?)BuildAsync(coordinator, waiting).GetAwaiter().GetResult()?["state"] == "cancelled",
            TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500)), daemon.Output);
        var log = (await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", waiting)).Stdout;
        Assert.Contains("cancelled by admin1.example: not needed; not started", log, StringComparison.Ordinal);
        Assert.DoesNotContain("[base-b/tools] built", log, StringComparison.Ordinal);

        // The builder goes on taking builds.
        var after = IdOf(await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b", "--single"));
        Assert.True(await Peer.EventuallyAsync(() => (string?)BuildAsync(coordinator, after).GetAwaiter().GetResult()?["state"] == "succeeded",
            TimeSpan.FromMinutes(2), TimeSpan.FromSeconds(1)), daemon.Output);
    }
}
