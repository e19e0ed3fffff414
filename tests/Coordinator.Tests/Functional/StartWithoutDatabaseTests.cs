using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Health.V1;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// An instance started while its PostgreSQL is down (a control host booting before the database host) comes up
/// NOT_SERVING with one line, refuses calls with UNAVAILABLE, and serves once the database answers: no stack trace,
/// no exit, no restart.
/// </summary>
public sealed class StartWithoutDatabaseTests
{
    private static ReportRequest Report(string node, string message)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = message });
        return r;
    }

    private static async Task<string> AgentCheckAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        using var reader = new StreamReader(client.GetStream());
        return await reader.ReadToEndAsync();
    }

    private static async Task<string> ScrapeAsync(int port)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
    }

    private static bool IsWarningOrWorse(string line) =>
        line.Contains(" WRN ", StringComparison.Ordinal) || line.Contains(" ERR ", StringComparison.Ordinal) || line.Contains(" FTL ", StringComparison.Ordinal);

    [Fact]
    public async Task Postgres_down_at_start_means_NOT_SERVING_and_one_line_then_serving_once_it_answers_without_a_restart()
    {
        await using var pg = await PrivatePostgres.StartAsync();
        await pg.StopAsync();
        var metricsPort = Peer.FreePort();
        var agentPort = Peer.FreePort();
        await using var h = await CoordinatorHarness.StartAsync(asProcess: true, editConfig: c =>
        {
            CoordinatorHarness.OnPostgres(pg, "coordinator")(c);
            c["Coordinator"]!["HealthAgentPort"] = agentPort;
            c["Metrics"]!["Port"] = metricsPort;
        });
        var process = h.Process!;
        var pid = process.Pid;

        var health = new Health.HealthClient(h.Channel(CoordinatorHarness.Viewer));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.StartsWith("down", await AgentCheckAsync(agentPort), StringComparison.Ordinal);
        Assert.Contains("toolforge_coordinator_store_up 0", await ScrapeAsync(metricsPort), StringComparison.Ordinal);
        var agent = h.AgentClient("tools-k8s-worker-1");
        var refused = await Assert.ThrowsAsync<RpcException>(() => agent.ReportAsync(Report("tools-k8s-worker-1", "while down")).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Contains("nothing was stored, send again", refused.Status.Detail, StringComparison.Ordinal);
        var admin = await Assert.ThrowsAsync<RpcException>(() => h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, admin.StatusCode);

        // A few backoff rounds: still one line about the database, nothing else above INFO, no stack trace.
        Assert.True(await process.WaitForOutputAsync("does not answer at start", TimeSpan.FromSeconds(10)), process.Output);
        await Task.Delay(TimeSpan.FromSeconds(3)); // waiting for the absence of a second line: no positive signal exists
        var before = process.Output;
        var lines = before.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Count(l => l.Contains("does not answer at start", StringComparison.Ordinal)) == 1, before);
        Assert.True(lines.Count(IsWarningOrWorse) == 1, before);
        Assert.DoesNotContain("   at ", before, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", before, StringComparison.Ordinal);
        Assert.False(process.HasExited);

        await pg.RestartAsync();
        Assert.True(await Peer.EventuallyAsync(
            () => health.Check(new HealthCheckRequest()).Status == HealthCheckResponse.Types.ServingStatus.Serving, TimeSpan.FromSeconds(30)), process.Output);
        Assert.StartsWith("up", await AgentCheckAsync(agentPort), StringComparison.Ordinal);
        Assert.Contains("toolforge_coordinator_store_up 1", await ScrapeAsync(metricsPort), StringComparison.Ordinal);
        await agent.ReportAsync(Report("tools-k8s-worker-1", "after"));

        Assert.Equal(pid, h.Process!.Pid);
        Assert.False(process.HasExited);
        Assert.Equal(Storage.PostgresStore.CurrentVersion, await pg.ScalarAsync("SELECT MAX(version) FROM toolforge_schema"));
        Assert.Equal(1, await pg.ScalarAsync("SELECT COUNT(*) FROM agents WHERE node = 'tools-k8s-worker-1'"));
        Assert.Equal(1, await pg.ScalarAsync("SELECT COUNT(*) FROM check_history WHERE node = 'tools-k8s-worker-1' AND message = 'after'"));
        Assert.Equal(0, await pg.ScalarAsync("SELECT COUNT(*) FROM check_history WHERE message = 'while down'"));
        var node = await h.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = "tools-k8s-worker-1" });
        Assert.Equal("after", node.Checks.Single().Message);
        Assert.DoesNotContain("   at ", process.Output, StringComparison.Ordinal);
    }
}
