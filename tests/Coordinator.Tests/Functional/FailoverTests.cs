using Google.Protobuf.WellKnownTypes;
using Grpc.Health.V1;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Losing the database host: a streaming replica of the private PostgreSQL, promoted by hand (the documented way),
/// brings the instances back — by themselves when their connection string lists both hosts with
/// Target Session Attributes=primary, or after the connection string is re-pointed and the instance restarted.
/// </summary>
[Collection("cluster")]
public sealed class FailoverTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static ReportRequest Report(string node, string message)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = message });
        return r;
    }

    private static bool Serving(CoordinatorHarness h)
    {
        try
        {
            return new Health.HealthClient(h.Channel(CoordinatorHarness.Viewer)).Check(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(3)).Status
                == HealthCheckResponse.Types.ServingStatus.Serving;
        }
        catch (Grpc.Core.RpcException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Promoting_the_replica_brings_the_instances_back_by_themselves_and_a_re_pointed_instance_serves_the_same_data()
    {
        await pg.Server.CreateDatabaseAsync("failover");
        var replicaPort = await pg.Server.StartReplicaAsync();
        var both = $"Host=127.0.0.1:{pg.Server.Port},127.0.0.1:{replicaPort};Database=failover;Username={PrivatePostgres.User};Target Session Attributes=primary;Host Recheck Seconds=2";
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, "failover", both));
        await using var b = await a.StartSiblingAsync();
        for (var i = 0; i < 5; i++)
        {
            await a.AgentClient($"tools-k8s-worker-{i}").ReportAsync(Report($"tools-k8s-worker-{i}", "before the failover"));
        }

        // Streaming replication has the rows before the primary goes.
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            using var c = pg.Server.OpenAsync("failover", replicaPort).GetAwaiter().GetResult();
            using var cmd = new Npgsql.NpgsqlCommand("SELECT COUNT(*) FROM agents", c);
            return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 5;
        }, TimeSpan.FromSeconds(10)));

        await pg.Server.StopAsync();
        Assert.True(await Peer.EventuallyAsync(() => !Serving(a) && !Serving(b), TimeSpan.FromSeconds(10)), "still SERVING without a primary");

        await pg.Server.PromoteReplicaAsync();
        Assert.True(await Peer.EventuallyAsync(() => Serving(a) && Serving(b), TimeSpan.FromSeconds(15)), "the instances did not come back after the promotion");
        await b.AgentClient("tools-k8s-worker-9").ReportAsync(Report("tools-k8s-worker-9", "after the failover"));
        // A's listener may still be in its reconnect backoff (up to 5 s) and then resyncs; under CI's load 10 s was
        // once not enough.
        Assert.True(await Peer.EventuallyAsync(() =>
            a.AdminClient(CoordinatorHarness.Viewer).ListNodes(new ListNodesRequest()).Nodes.Any(n => n.Name == "tools-k8s-worker-9"), TimeSpan.FromSeconds(30)),
            "a change through B did not reach A after the failover");

        // The other way: the connection string re-pointed at the new primary alone, the instance restarted.
        await a.EditConfigAsync(c => c["Coordinator"]!["PostgreSql"]!["ConnectionString"] = pg.Server.ReplicaConnectionString("failover"));
        await a.RestartAsync();
        var nodes = (await a.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes.Select(n => n.Name).Order().ToList();
        Assert.Equal([.. Enumerable.Range(0, 5).Select(i => $"tools-k8s-worker-{i}"), "tools-k8s-worker-9"], nodes);
        var detail = await a.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = "tools-k8s-worker-0" });
        Assert.Equal("before the failover", detail.Checks.Single().Message);
    }
}
