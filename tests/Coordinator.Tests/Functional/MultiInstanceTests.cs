using Toolforge.Agents.Coordinator.Hosting;
using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Health.V1;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Cluster;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Several coordinator instances on one real PostgreSQL 15 (a private cluster): changes made through one reach the
/// watchers of the others, a build is handed out once, progress may arrive anywhere, one instance holds the sweeper
/// lease, and a database that goes away and comes back is ridden out without a restart.
/// </summary>
public sealed class MultiInstanceTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static ReportRequest Report(string node, CheckState kubelet, string message)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = kubelet, Message = message });
        return r;
    }

    private async Task<(CoordinatorHarness A, CoordinatorHarness B)> TwoAsync()
    {
        var db = "m" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        var b = await a.StartSiblingAsync();
        return (a, b);
    }

    [Fact]
    public async Task A_watch_on_one_instance_sees_reports_made_through_another_in_order_within_a_second()
    {
        var (a, b) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        using var watch = b.AdminClient(CoordinatorHarness.Viewer).Watch(new WatchRequest());
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        Assert.NotNull(watch.ResponseStream.Current.Snapshot);

        var agent = a.AgentClient("tools-k8s-worker-7");
        var states = new[] { (CheckState.Ok, "active"), (CheckState.Failing, "ActiveState=failed"), (CheckState.Ok, "active again") };
        foreach (var (state, message) in states)
        {
            await agent.ReportAsync(Report("tools-k8s-worker-7", state, message));
            var sw = Stopwatch.StartNew();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            Assert.True(await watch.ResponseStream.MoveNext(cts.Token));
            var seen = watch.ResponseStream.Current.Node;
            Assert.Equal("tools-k8s-worker-7", seen.Name);
            Assert.Equal(state == CheckState.Ok ? NodeState.Ok : NodeState.Failing, seen.State);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"took {sw.Elapsed}");
        }

        // And reads on B answer from what A stored.
        var node = await b.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = "tools-k8s-worker-7" });
        Assert.Equal("active again", node.Checks.Single().Message);
    }

    [Fact]
    public async Task A_build_requested_on_one_instance_goes_to_exactly_one_builder_on_the_others_and_progress_may_arrive_anywhere()
    {
        var (a, b) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        await using var c = await a.StartSiblingAsync();

        // The same builder identity has a stream open on B and on C (e.g. two builder hosts behind one name would not
        // happen, but a builder whose old stream is still open while its new one came up elsewhere does).
        using var onB = b.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        using var onC = c.AgentClient(CoordinatorHarness.Builder2).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder2, Agent = AgentKind.Builder });
        await Task.Delay(300); // both streams registered

        var got = new List<(string Where, Command Command)>();
        var readers = new[] { ("B", onB), ("C", onC) }.Select(x => Task.Run(async () =>
        {
            try
            {
                while (await x.Item2.ResponseStream.MoveNext(CancellationToken.None))
                {
                    lock (got)
                    {
                        got.Add((x.Item1, x.Item2.ResponseStream.Current));
                    }
                }
            }
            catch (RpcException)
            {
                // stream ended at dispose
            }
        })).ToList();

        var requested = new List<Build>();
        for (var i = 0; i < 6; i++)
        {
            requested.Add(await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { $"base-{i}" } } }));
        }

        Assert.True(await Peer.EventuallyAsync(() => { lock (got) { return got.Count >= 6; } }, TimeSpan.FromSeconds(10)));
        await Task.Delay(1000); // a second hand-over would have come by now
        List<(string Where, Command Command)> all;
        lock (got)
        {
            all = [.. got];
        }

        Assert.Equal(6, all.Count);
        Assert.Equal(requested.Select(r => r.Id).Order(), all.Select(x => x.Command.BuildId).Order());
        Assert.Equal(1, await pg.Server.ScalarAsync("SELECT 1")); // the cluster is still up (sanity)

        // Progress for the first build, sent to A (not where it was handed out), a batch twice, the end through the third.
        var (where, command) = all.First(x => x.Command.BuildId == requested[0].Id);
        var identity = where == "B" ? CoordinatorHarness.Builder : CoordinatorHarness.Builder2;
        var batch = new CommandProgress { CommandId = command.Id, Node = identity, State = BuildState.Running, FirstLine = 1 };
        batch.LogLines.AddRange(Enumerable.Range(1, 100).Select(i => $"line {i}"));
        await a.AgentClient(identity).ReportCommandProgressAsync(batch);
        await a.AgentClient(identity).ReportCommandProgressAsync(batch); // its answer was "lost": sent again
        var more = new CommandProgress { CommandId = command.Id, Node = identity, FirstLine = 101 };
        more.LogLines.AddRange(Enumerable.Range(101, 50).Select(i => $"line {i}"));
        await b.AgentClient(identity).ReportCommandProgressAsync(more);
        var done = new CommandProgress { CommandId = command.Id, Node = identity, State = BuildState.Succeeded };
        await c.AgentClient(identity).ReportCommandProgressAsync(done);
        await c.AgentClient(identity).ReportCommandProgressAsync(done); // the final state again: acknowledged, nothing changes

        foreach (var h in new[] { a, b, c })
        {
            // Eventually: under CI's load (two cores shared with other assemblies' NativeAOT compiles) this took over
            // 5 s once; how fast changes travel is the watch test's to measure.
            Assert.True(await Peer.EventuallyAsync(
                () => h.AdminClient(CoordinatorHarness.Viewer).GetBuild(new GetBuildRequest { Id = requested[0].Id }).State == BuildState.Succeeded, TimeSpan.FromSeconds(30)),
                $"instance on port {h.Port}: the build did not end Succeeded");
            var log = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", requested[0].Id);
            Assert.Equal(Enumerable.Range(1, 150).Select(i => $"line {i}"), log.Stdout.TrimEnd('\n').Split('\n'));
        }

        Assert.Equal(150, await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM build_log WHERE build = {requested[0].Id}", DatabaseOf(a)));
    }

    [Fact]
    public async Task One_instance_holds_the_sweeper_lease_and_it_moves_when_that_instance_stops()
    {
        var (a, b) = await TwoAsync();
        await using var _b = b;
        var leaseA = a.Services.GetService(typeof(SweeperLease)) as SweeperLease;
        var leaseB = b.Services.GetService(typeof(SweeperLease)) as SweeperLease;
        Assert.True(await Peer.EventuallyAsync(() => leaseA!.IsHeld || leaseB!.IsHeld, TimeSpan.FromSeconds(5)));
        await Task.Delay(600);
        Assert.True(leaseA!.IsHeld ^ leaseB!.IsHeld, "exactly one instance holds the lease");
        var (holder, other, otherLease) = leaseA.IsHeld ? (a, b, leaseB) : (b, a, leaseA);
        await holder.StopAsync();
        var sw = Stopwatch.StartNew();
        Assert.True(await Peer.EventuallyAsync(() => otherLease.IsHeld, TimeSpan.FromSeconds(5)), "the lease did not move");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"the lease took {sw.Elapsed} to move");
        await a.DisposeAsync();
    }

    [Fact]
    public async Task Losing_the_database_means_NOT_SERVING_and_UNAVAILABLE_then_recovery_without_a_restart()
    {
        var (a, b) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        var health = new Health.HealthClient(a.Channel(CoordinatorHarness.Viewer));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        await a.AgentClient("tools-k8s-worker-1").ReportAsync(Report("tools-k8s-worker-1", CheckState.Ok, "before"));

        await pg.Server.StopAsync();
        try
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => a.AgentClient("tools-k8s-worker-1").ReportAsync(Report("tools-k8s-worker-1", CheckState.Failing, "during")).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.Contains("database is unavailable", refused.Status.Detail, StringComparison.Ordinal);
            Assert.True(await Peer.EventuallyAsync(
                () => health.Check(new HealthCheckRequest()).Status == HealthCheckResponse.Types.ServingStatus.NotServing, TimeSpan.FromSeconds(5)));
            var healthB = new Health.HealthClient(b.Channel(CoordinatorHarness.Viewer));
            Assert.True(await Peer.EventuallyAsync(
                () => healthB.Check(new HealthCheckRequest()).Status == HealthCheckResponse.Types.ServingStatus.NotServing, TimeSpan.FromSeconds(5)));
        }
        finally
        {
            await pg.Server.RestartAsync();
        }

        Assert.True(await Peer.EventuallyAsync(
            () => health.Check(new HealthCheckRequest()).Status == HealthCheckResponse.Types.ServingStatus.Serving, TimeSpan.FromSeconds(10)));
        await a.AgentClient("tools-k8s-worker-1").ReportAsync(Report("tools-k8s-worker-1", CheckState.Failing, "after"));

        // B listens again (its connection broke; it reconnects with backoff and reads the store once): a change through
        // A reaches B's readers. Until then B may not know the node at all (its notification came as the database went).
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            try
            {
                return b.AdminClient(CoordinatorHarness.Viewer).GetNode(new GetNodeRequest { Name = "tools-k8s-worker-1" }).Checks.Single().Message == "after";
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task Two_coordinators_starting_together_on_an_empty_database_both_come_up_on_one_schema()
    {
        var (a, b) = await TwoAsync(); // a cluster's certificates and configuration
        await using var _a = a;
        await using var _b = b;
        var empty = "e" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(empty);
        var config = System.Text.Json.Nodes.JsonNode.Parse(a.Config.ToJsonString())!.AsObject();
        config["Coordinator"]!["PostgreSql"]!["ConnectionString"] = pg.Server.ConnectionString(empty);
        var path = a.Dir["empty.json"];
        await File.WriteAllTextAsync(path, config.ToJsonString());

        // Both built (storage opened and migrated) and started at the same moment.
        using var go = new Barrier(2);
        var apps = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            go.SignalAndWait();
            var app = CoordinatorApp.Build(path);
            await app.StartAsync();
            return app;
        })));
        try
        {
            Assert.Equal(Storage.PostgresStore.CurrentVersion, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM toolforge_schema", empty));
            Assert.Equal(Storage.PostgresStore.CurrentVersion, await pg.Server.ScalarAsync("SELECT MAX(version) FROM toolforge_schema", empty));
            foreach (var app in apps)
            {
                var port = CoordinatorApp.BoundPort(app);
                var (cert, key) = a.Issue("tools-k8s-worker-" + port.ToString(System.Globalization.CultureInfo.InvariantCulture));
                using var channel = Toolforge.Agents.Common.Reporting.CoordinatorChannel.Create($"https://127.0.0.1:{port}", cert, key, a.CaPath, TimeSpan.FromSeconds(5));
                var node = "tools-k8s-worker-" + port.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await new AgentService.AgentServiceClient(channel).ReportAsync(Report(node, CheckState.Ok, "up"));
            }

            Assert.Equal(2, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM nodes", empty));
        }
        finally
        {
            foreach (var app in apps)
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
    }

    private static string DatabaseOf(CoordinatorHarness h)
    {
        var cs = (string)h.Config["Coordinator"]!["PostgreSql"]!["ConnectionString"]!;
        return cs.Split(';').Single(p => p.StartsWith("Database=", StringComparison.Ordinal))["Database=".Length..];
    }
}
