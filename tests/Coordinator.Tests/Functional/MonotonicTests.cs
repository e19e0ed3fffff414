using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Npgsql;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Several instances on one PostgreSQL: what is stored only moves forward. A build never goes back from a later state
/// (a late Running committed after Succeeded), and an agent's rows follow the order the agent sent its reports in,
/// not the order (or the clocks) of the instances they reached.
/// </summary>
public sealed class MonotonicTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private async Task<(CoordinatorHarness A, CoordinatorHarness B, string Db)> TwoAsync()
    {
        var db = "mono" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        var b = await a.StartSiblingAsync();
        return (a, b, db);
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }

    private static long Rank(BuildState s, bool dispatched) => s switch
    {
        BuildState.Succeeded or BuildState.Failed => 3,
        BuildState.Running => 2,
        _ => dispatched ? 1 : 0,
    };

    /// <summary>Every build state the watchers of an instance were shown, in order.</summary>
    private static (List<(string Id, BuildState State, bool Dispatched)> Seen, Task Reader) Watch(CoordinatorHarness h, CancellationToken ct)
    {
        var seen = new List<(string, BuildState, bool)>();
        var call = h.AdminClient(CoordinatorHarness.Viewer).Watch(new WatchRequest(), cancellationToken: ct);
        var reader = Task.Run(async () =>
        {
            using var _ = call;
            try
            {
                while (await call.ResponseStream.MoveNext(ct))
                {
                    var e = call.ResponseStream.Current;
                    if (e.Build is { } b)
                    {
                        lock (seen)
                        {
                            seen.Add((b.Id, b.State, b.DispatchedAt is not null));
                        }
                    }
                }
            }
            catch (RpcException) when (ct.IsCancellationRequested)
            {
                // the test is done
            }
            catch (OperationCanceledException)
            {
                // the test is done
            }
        }, CancellationToken.None);
        return (seen, reader);
    }

    [Fact]
    public async Task A_late_Running_committed_on_one_instance_after_Succeeded_through_another_never_moves_the_build_back_and_every_instance_ends_Succeeded()
    {
        var (a, b, db) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        using var stop = new CancellationTokenSource();
        var watchA = Watch(a, stop.Token);
        var watchB = Watch(b, stop.Token);

        // The builder's stream is on B; the build is requested through A and handed over by B.
        using var stream = b.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var build = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } } });
        Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
        var command = stream.ResponseStream.Current;
        Assert.Equal(build.Id, command.BuildId);
        var id = long.Parse(build.Id, System.Globalization.CultureInfo.InvariantCulture);

        // A test transaction holds the place of the first log line: A's commit of Running (lines 1-3, then the build
        // row) waits inside its transaction, after deciding, before it reaches the build row.
        await using var holder = await pg.Server.OpenAsync(db);
        await using var tx = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand($"INSERT INTO build_log(build, seq, line) VALUES ({id}, 1, 'held by the test')", holder, tx))
        {
            await hold.ExecuteNonQueryAsync();
        }

        var running = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running, FirstLine = 1 };
        running.LogLines.AddRange(["line 1", "line 2", "line 3"]);
        var late = a.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(running, deadline: DateTime.UtcNow.AddSeconds(60)).ResponseAsync;
        Assert.True(await EventuallyAsync(async () => await pg.Server.ScalarAsync(
            $"SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{db}' AND wait_event_type = 'Lock'", db) >= 1, TimeSpan.FromSeconds(20)),
            "A's commit of Running never waited on the test's lock");

        // Meanwhile the build ends through B.
        await b.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(
            new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded });
        Assert.Equal(BuildState.Succeeded, (await b.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = build.Id })).State);

        // The lock goes: A's late Running reaches the build row, which is finished.
        await tx.RollbackAsync();
        var refused = await Assert.ThrowsAsync<RpcException>(() => late);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("already succeeded", refused.Status.Detail, StringComparison.Ordinal);

        foreach (var h in new[] { a, b })
        {
            Assert.True(await Peer.EventuallyAsync(
                () => h.AdminClient(CoordinatorHarness.Viewer).GetBuild(new GetBuildRequest { Id = build.Id }).State == BuildState.Succeeded, TimeSpan.FromSeconds(10)),
                $"instance on port {h.Port} does not show the build Succeeded");
        }

        Assert.Equal(3 * 2, await pg.Server.ScalarAsync($"SELECT rank FROM builds WHERE id = {id}", db)); // finished (place 3 × 2; not asked to stop)
        await using (var c = await pg.Server.OpenAsync(db))
        await using (var read = new NpgsqlCommand($"SELECT body FROM builds WHERE id = {id}", c))
        {
            Assert.Equal(BuildState.Succeeded, Build.Parser.ParseFrom((byte[])(await read.ExecuteScalarAsync())!).State);
        }

        // A new change after it (another build) reaches both watchers, so everything about this one has been shown.
        var marker = await b.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "marker" } } });
        foreach (var (_, seen) in new[] { ("A", watchA.Seen), ("B", watchB.Seen) })
        {
            Assert.True(await Peer.EventuallyAsync(() => { lock (seen) { return seen.Any(s => s.Id == marker.Id); } }, TimeSpan.FromSeconds(10)));
        }

        stop.Cancel();
        await Task.WhenAll(watchA.Reader, watchB.Reader);
        foreach (var (name, seen) in new[] { ("A", watchA.Seen), ("B", watchB.Seen) })
        {
            List<(BuildState State, bool Dispatched)> history;
            lock (seen)
            {
                history = [.. seen.Where(s => s.Id == build.Id).Select(s => (s.State, s.Dispatched))];
            }

            var ranks = history.Select(s => Rank(s.State, s.Dispatched)).ToList();
            Assert.True(ranks.Count > 0, $"{name}'s watchers were shown nothing of build {build.Id}");
            for (var i = 1; i < ranks.Count; i++)
            {
                Assert.True(ranks[i] >= ranks[i - 1], $"{name}'s watchers saw the build go back: {string.Join(" -> ", history)}");
            }

            Assert.Equal(BuildState.Succeeded, history[^1].State);
            Assert.DoesNotContain(history.SkipWhile(s => s.State != BuildState.Succeeded), s => s.State != BuildState.Succeeded);
        }
    }

    [Fact]
    public async Task An_agents_earlier_report_reaching_an_instance_after_its_later_one_is_superseded_on_every_instance_whatever_the_clocks()
    {
        var (a, b, db) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        const string node = "tools-k8s-worker-7";
        var sent = DateTime.UtcNow;
        ReportRequest Report(DateTime at, CheckState state, string message)
        {
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(at) };
            r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = state, Message = message });
            return r;
        }

        await a.AgentClient(node).ReportAsync(Report(sent, CheckState.Ok, "first"));
        // The agent's next two reports: the later one reaches B first, the earlier one (slow network) reaches A after it.
        await b.AgentClient(node).ReportAsync(Report(sent.AddSeconds(20), CheckState.Ok, "third"));
        await a.AgentClient(node).ReportAsync(Report(sent.AddSeconds(10), CheckState.Failing, "second"));
        await b.AgentClient(node).ReportAsync(Report(sent.AddSeconds(10), CheckState.Failing, "second")); // and again to B

        foreach (var h in new[] { a, b })
        {
            Assert.True(await Peer.EventuallyAsync(
                () => h.AdminClient(CoordinatorHarness.Viewer).GetNode(new GetNodeRequest { Name = node }).Checks.Single().Message == "third", TimeSpan.FromSeconds(10)),
                $"instance on port {h.Port} does not show the agent's latest report");
        }

        // Stored: the row of the latest report, and a history with no Failing (the superseded report changed nothing).
        Assert.Equal(Timestamp.FromDateTime(sent.AddSeconds(20)).ToDateTimeOffset().ToUnixTimeMilliseconds(),
            await pg.Server.ScalarAsync($"SELECT sent_at FROM agents WHERE node = '{node}'", db));
        Assert.Equal(0, await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM check_history WHERE node = '{node}' AND (message = 'second' OR state = {(int)CheckState.Failing})", db));

        // The agent goes on: its next report is taken everywhere.
        await a.AgentClient(node).ReportAsync(Report(sent.AddSeconds(30), CheckState.Failing, "fourth"));
        foreach (var h in new[] { a, b })
        {
            Assert.True(await Peer.EventuallyAsync(
                () => h.AdminClient(CoordinatorHarness.Viewer).GetNode(new GetNodeRequest { Name = node }).Checks.Single().Message == "fourth", TimeSpan.FromSeconds(10)));
        }

        Assert.Equal((int)CheckState.Failing, await pg.Server.ScalarAsync($"SELECT state FROM check_history WHERE node = '{node}' ORDER BY id DESC LIMIT 1", db));
        Assert.Equal(1, await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM check_history WHERE node = '{node}' AND state = {(int)CheckState.Failing}", db));
    }
}
