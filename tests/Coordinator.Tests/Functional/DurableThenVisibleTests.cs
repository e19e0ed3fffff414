using System.Data.Common;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Issue 24, durable then visible: while the store refuses writes (SQLite's write lock held by another connection;
/// PostgreSQL stopped) an agent's check goes warning → ok and its finding resolves, and a builder sends its last
/// lines and Succeeded. Both are told UNAVAILABLE, nothing of it is shown, and once the store is back the same calls
/// sent again are applied in full: every history row, every log line exactly once, the build Succeeded everywhere,
/// log followers end, and no watcher saw anything the store does not hold.
/// </summary>
public sealed class DurableThenVisibleTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private const string Worker = "tools-k8s-worker-24";
    private const string Subject = "default/kubernetes:https";

    private static ReportRequest Report(CheckState kubelet, bool finding)
    {
        var r = new ReportRequest { Node = Worker, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = kubelet, Message = kubelet == CheckState.Ok ? "active" : "restarted 3 times" });
        if (finding)
        {
            r.Findings.Add(new Finding { Kind = "missing-rule", Subject = Subject, Message = "no KUBE-SERVICES rule", Severity = Severity.Error });
        }

        return r;
    }

    private static CommandProgress Lines(Command command, int from, int to, BuildState state)
    {
        var p = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = state, FirstLine = from };
        p.LogLines.AddRange(Enumerable.Range(from, to - from + 1).Select(i => $"line {i}"));
        return p;
    }

    [Fact]
    public async Task Sqlite_write_lock_held_while_a_check_recovers_and_a_build_ends_then_the_resends_store_everything_once()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        await RunAsync(
            first: h,
            resendTo: h,
            all: [h],
            outage: () => Task.FromResult<IAsyncDisposable>(SqliteWriteLock.Take(h.DatabasePath)),
            query: async sql =>
            {
                await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
                await c.OpenAsync();
                return await RowsAsync(c, sql);
            });
    }

    [Fact]
    public async Task Postgres_stopped_while_a_check_recovers_and_a_build_ends_then_the_resends_to_another_instance_store_everything_once_and_every_instance_shows_it()
    {
        var db = "d" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        await using var b = await a.StartSiblingAsync();
        await RunAsync(
            first: a,
            resendTo: b,
            all: [a, b],
            outage: async () =>
            {
                await pg.Server.StopAsync();
                return new Restart(pg.Server);
            },
            query: async sql =>
            {
                await using var c = await pg.Server.OpenAsync(db);
                return await RowsAsync(c, sql);
            });
    }

    [Fact]
    public async Task Sqlite_a_report_decided_against_a_state_the_store_no_longer_holds_is_decided_again_and_its_change_is_recorded_once()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        await DecidedAgainAsync(h, async sql =>
        {
            await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Pooling=False");
            await c.OpenAsync();
            return await RowsAsync(c, sql);
        });
    }

    [Fact]
    public async Task Postgres_a_report_reaching_an_instance_before_another_instances_change_does_is_decided_again_and_its_change_is_recorded_once()
    {
        var db = "d" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        await DecidedAgainAsync(a, async sql =>
        {
            await using var c = await pg.Server.OpenAsync(db);
            return await RowsAsync(c, sql);
        });
    }

    /// <summary>
    /// Another instance stores warning → ok and the resolution (written here straight into the store, without the
    /// notification that would tell this instance); the agent's next report, ok, reaches this instance, which still
    /// holds warning: it must not record warning → ok or the resolution a second time.
    /// </summary>
    private static async Task DecidedAgainAsync(CoordinatorHarness h, Func<string, Task<List<object[]>>> sql)
    {
        await h.AgentClient(Worker).ReportAsync(Report(CheckState.Warning, finding: true));
        var stored = Report(CheckState.Ok, finding: false);
        await sql($"""
            UPDATE agents SET state = X'{Convert.ToHexString(Google.Protobuf.MessageExtensions.ToByteArray(stored))}', last_report = last_report + 1 WHERE node = '{Worker}';
            INSERT INTO check_history(node, kind, name, state, message, at) VALUES ('{Worker}', 1, 'kubelet.unit', {(int)CheckState.Ok}, 'active', 1);
            INSERT INTO finding_history(node, kind, finding, subject, message, first_seen, resolved_at) VALUES ('{Worker}', 1, 'missing-rule', '{Subject}', 'x', 1, 2)
            """.Replace("X'", h.Config["Coordinator"]!["Store"] is null ? "X'" : "'\\x", StringComparison.Ordinal));
        Assert.Equal(CheckState.Warning, Kubelet(h)); // this instance has not taken it in

        await h.AgentClient(Worker).ReportAsync(Report(CheckState.Ok, finding: false));
        var checks = await sql($"SELECT state FROM check_history WHERE node = '{Worker}' ORDER BY id");
        Assert.Equal([(long)CheckState.Warning, (long)CheckState.Ok], checks.Select(r => Convert.ToInt64(r[0], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Single(await sql($"SELECT id FROM finding_history WHERE node = '{Worker}'"));
        Assert.Equal(CheckState.Ok, Kubelet(h));
        Assert.Empty(Node(h).Findings);
    }

    private static async Task RunAsync(
        CoordinatorHarness first, CoordinatorHarness resendTo, CoordinatorHarness[] all, Func<Task<IAsyncDisposable>> outage, Func<string, Task<List<object[]>>> query)
    {
        var watches = new List<WatchRecorder>();
        foreach (var h in all)
        {
            watches.Add(await WatchRecorder.StartAsync(h.AdminClient(CoordinatorHarness.Viewer)));
        }

        try
        {
            // Before: the check warns and a finding stands; a build runs and has 50 lines.
            await first.AgentClient(Worker).ReportAsync(Report(CheckState.Warning, finding: true));
            using var commands = first.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(
                new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
            var build = await first.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base" } } });
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
            {
                Assert.True(await commands.ResponseStream.MoveNext(cts.Token));
            }

            var command = commands.ResponseStream.Current;
            Assert.Equal(build.Id, command.BuildId);
            await first.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(Lines(command, 1, 50, BuildState.Running));
            foreach (var h in all)
            {
                Assert.True(await Peer.EventuallyAsync(() => Kubelet(h) == CheckState.Warning && BuildOn(h, build.Id).State == BuildState.Running, TimeSpan.FromSeconds(15)),
                    $"instance on port {h.Port} did not show the state before the outage");
            }

            // Log followers on every instance, holding the 50 stored lines (so they are attached before the outage).
            var followers = all.Select(h => LogFollower.Start(h.AdminClient(CoordinatorHarness.Viewer), build.Id)).ToList();
            foreach (var f in followers)
            {
                Assert.True(await Peer.EventuallyAsync(() => f.Count == 50, TimeSpan.FromSeconds(15)), $"follower has {f.Count} lines, 50 expected");
            }

            // And the real `agentctl build-log -f`, on the instance the resends will reach.
            var (cert, key) = resendTo.Issue(CoordinatorHarness.Viewer);
            await using var agentctl = BackgroundProcess.StartTool("agentctl",
                ["build-log", build.Id, "-f", "--server", resendTo.Address, "--cert", cert, "--key", key, "--ca", resendTo.CaPath],
                new Dictionary<string, string> { ["NO_COLOR"] = "1" });
            Assert.True(await agentctl.WaitForOutputAsync("line 50\n", TimeSpan.FromSeconds(60)), agentctl.Output);

            foreach (var w in watches)
            {
                Assert.True(await Peer.EventuallyAsync(() => w.BuildStates(build.Id).Contains(BuildState.Running), TimeSpan.FromSeconds(15)));
                w.Phase = Phase.Outage;
            }

            // The outage: the check recovers, the finding resolves, the build's last lines and Succeeded are sent.
            await using (await outage())
            {
                var refusals = await Task.WhenAll(
                    StatusOf(() => first.AgentClient(Worker).ReportAsync(Report(CheckState.Ok, finding: false), deadline: DateTime.UtcNow.AddSeconds(90)).ResponseAsync),
                    StatusOf(() => first.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(
                        Lines(command, 51, 60, BuildState.Succeeded), deadline: DateTime.UtcNow.AddSeconds(90)).ResponseAsync));
                Assert.Equal([StatusCode.Unavailable, StatusCode.Unavailable], refusals);

                // Nothing of it is shown anywhere.
                foreach (var h in all)
                {
                    Assert.Equal(CheckState.Warning, Kubelet(h));
                    Assert.Single(Node(h).Findings);
                    Assert.Equal(BuildState.Running, BuildOn(h, build.Id).State);
                }

                Assert.All(followers, f => Assert.Equal(50, f.Count));
                foreach (var w in watches)
                {
                    w.Phase = Phase.After; // events from here on arrive after the store is back
                }
            }

            // The agent and the builder send the same again (here to another instance when there are several).
            await SendUntilAcceptedAsync(() => resendTo.AgentClient(Worker).ReportAsync(Report(CheckState.Ok, finding: false), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);
            await SendUntilAcceptedAsync(() => resendTo.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(
                Lines(command, 51, 60, BuildState.Succeeded), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

            // Stored: both check states in order, the resolved finding, every line once, the build Succeeded.
            var checks = await query($"SELECT state FROM check_history WHERE node = '{Worker}' AND name = 'kubelet.unit' ORDER BY id");
            Assert.Equal([(long)CheckState.Warning, (long)CheckState.Ok], checks.Select(r => Convert.ToInt64(r[0], System.Globalization.CultureInfo.InvariantCulture)));
            var resolved = Assert.Single(await query($"SELECT finding, subject, first_seen, resolved_at FROM finding_history WHERE node = '{Worker}'"));
            Assert.Equal(("missing-rule", Subject), ((string)resolved[0], (string)resolved[1]));
            Assert.True(Convert.ToInt64(resolved[2], System.Globalization.CultureInfo.InvariantCulture) < Convert.ToInt64(resolved[3], System.Globalization.CultureInfo.InvariantCulture));
            var log = await query($"SELECT seq, line FROM build_log WHERE build = {build.Id} ORDER BY seq");
            Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i), log.Select(r => Convert.ToInt64(r[0], System.Globalization.CultureInfo.InvariantCulture)));
            Assert.Equal(Enumerable.Range(1, 60).Select(i => $"line {i}"), log.Select(r => (string)r[1]));
            var body = Assert.Single(await query($"SELECT body FROM builds WHERE id = {build.Id}"));
            Assert.Equal(BuildState.Succeeded, Build.Parser.ParseFrom((byte[])body[0]).State);

            // Shown on every instance; every follower ends, with every line exactly once.
            foreach (var h in all)
            {
                Assert.True(await Peer.EventuallyAsync(() => Kubelet(h) == CheckState.Ok && Node(h).Findings.Count == 0 && BuildOn(h, build.Id).State == BuildState.Succeeded,
                    TimeSpan.FromSeconds(30)), $"instance on port {h.Port} does not show the stored state");
            }

            foreach (var f in followers)
            {
                var lines = await f.Ended.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(Enumerable.Range(1, 60).Select(i => $"line {i}"), lines);
            }

            // (HasExited may come before the last output lines are read: wait for the last one too.)
            Assert.True(await Peer.EventuallyAsync(() => agentctl.HasExited && agentctl.Output.Contains("line 60\n", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
                "agentctl build-log -f did not end after line 60: " + agentctl.Output);
            Assert.Equal(0, agentctl.ExitCode);
            Assert.Equal(Enumerable.Range(1, 60).Select(i => $"line {i}"), agentctl.Output.Split('\n').Where(l => l.StartsWith("line ", StringComparison.Ordinal)));

            // The watchers saw what is stored, in its order, and nothing while the store refused it.
            foreach (var w in watches)
            {
                Assert.True(await Peer.EventuallyAsync(() => w.NodeStates(Worker).LastOrDefault() == NodeState.Ok && w.BuildStates(build.Id).LastOrDefault() == BuildState.Succeeded,
                    TimeSpan.FromSeconds(30)));
                Assert.Empty(w.During(Worker, build.Id));
                Assert.Equal([NodeState.Warning, NodeState.Ok], Collapse(w.NodeStates(Worker)));
                Assert.Equal([1, 0], Collapse(w.NodeFindings(Worker)));
                var states = Collapse(w.BuildStates(build.Id));
                Assert.Equal(BuildState.Succeeded, states[^1]);
                Assert.Equal([BuildState.Running, BuildState.Succeeded], states.SkipWhile(s => s == BuildState.Queued));
            }
        }
        finally
        {
            foreach (var w in watches)
            {
                await w.DisposeAsync();
            }
        }
    }

    private static async Task SendUntilAcceptedAsync(Func<Task> send)
    {
        // As an agent does: UNAVAILABLE (the store just came back; a pooled connection may still be the dead one) is
        // sent again after a moment.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await send();
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && attempt < 30)
            {
                await Task.Delay(500);
            }
        }
    }

    private static async Task<StatusCode> StatusOf(Func<Task> call)
    {
        try
        {
            await call();
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    private static NodeDetail Node(CoordinatorHarness h) => h.AdminClient(CoordinatorHarness.Viewer).GetNode(new GetNodeRequest { Name = Worker });

    private static CheckState Kubelet(CoordinatorHarness h)
    {
        try
        {
            return Node(h).Checks.Single(c => c.Name == "kubelet.unit").State;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return CheckState.Unspecified;
        }
    }

    private static Build BuildOn(CoordinatorHarness h, string id)
    {
        try
        {
            return h.AdminClient(CoordinatorHarness.Viewer).GetBuild(new GetBuildRequest { Id = id });
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return new Build { Id = id };
        }
    }

    private static List<T> Collapse<T>(IEnumerable<T> seen)
    {
        var list = new List<T>();
        foreach (var s in seen)
        {
            if (list.Count == 0 || !EqualityComparer<T>.Default.Equals(list[^1], s))
            {
                list.Add(s);
            }
        }

        return list;
    }

    private static async Task<List<object[]>> RowsAsync(DbConnection c, string sql)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<object[]>();
        while (await r.ReadAsync())
        {
            var row = new object[r.FieldCount];
            r.GetValues(row);
            rows.Add(row);
        }

        return rows;
    }

    private enum Phase
    {
        Before,
        Outage,
        After,
    }

    /// <summary>A Watch stream's events, each with the phase of the test it arrived in.</summary>
    private sealed class WatchRecorder : IAsyncDisposable
    {
        private readonly AsyncServerStreamingCall<WatchEvent> _call;
        private readonly List<(Phase Phase, WatchEvent Event)> _seen = [];
        private readonly Task _reader;

        private WatchRecorder(AsyncServerStreamingCall<WatchEvent> call)
        {
            _call = call;
            _reader = Task.Run(async () =>
            {
                try
                {
                    while (await _call.ResponseStream.MoveNext(CancellationToken.None))
                    {
                        lock (_seen)
                        {
                            _seen.Add((Phase, _call.ResponseStream.Current));
                        }
                    }
                }
                catch (RpcException)
                {
                    // ended at dispose
                }
            });
        }

        public volatile Phase Phase;

        public static async Task<WatchRecorder> StartAsync(AdminService.AdminServiceClient client)
        {
            var call = client.Watch(new WatchRequest());
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            Assert.True(await call.ResponseStream.MoveNext(cts.Token));
            Assert.NotNull(call.ResponseStream.Current.Snapshot);
            return new WatchRecorder(call);
        }

        private List<(Phase Phase, WatchEvent Event)> Seen()
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }

        public List<NodeState> NodeStates(string node) => [.. Seen().Where(e => e.Event.Node?.Name == node).Select(e => e.Event.Node.State)];

        public List<int> NodeFindings(string node) => [.. Seen().Where(e => e.Event.Node?.Name == node).Select(e => e.Event.Node.Findings)];

        public List<BuildState> BuildStates(string id) => [.. Seen().Where(e => e.Event.Build?.Id == id).Select(e => e.Event.Build.State)];

        public List<WatchEvent> During(string node, string build) =>
            [.. Seen().Where(e => e.Phase == Phase.Outage && (e.Event.Node?.Name == node || e.Event.Build?.Id == build)).Select(e => e.Event)];

        public async ValueTask DisposeAsync()
        {
            _call.Dispose();
            await _reader;
        }
    }

    /// <summary>build-log -f: the lines of a followed build, until the stream ends.</summary>
    private sealed class LogFollower
    {
        private readonly List<string> _lines = [];

        private LogFollower(AsyncServerStreamingCall<BuildLogLine> call)
        {
            Ended = Task.Run(async () =>
            {
                using (call)
                {
                    while (await call.ResponseStream.MoveNext(CancellationToken.None))
                    {
                        lock (_lines)
                        {
                            _lines.Add(call.ResponseStream.Current.Line);
                        }
                    }
                }

                lock (_lines)
                {
                    return _lines.ToList();
                }
            });
        }

        public Task<List<string>> Ended { get; }

        public int Count
        {
            get
            {
                lock (_lines)
                {
                    return _lines.Count;
                }
            }
        }

        public static LogFollower Start(AdminService.AdminServiceClient client, string id) =>
            new(client.StreamBuildLog(new StreamBuildLogRequest { Id = id, Follow = true }));
    }

    /// <summary>The private PostgreSQL, started again when disposed.</summary>
    private sealed class Restart(PrivatePostgres server) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await server.RestartAsync();
    }
}
