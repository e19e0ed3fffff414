using Microsoft.Extensions.DependencyInjection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// The admins' lifecycle verbs — forget a node, cancel a build, acknowledge a finding — on SQLite and on two
/// instances sharing PostgreSQL: what one instance did is what every instance shows, each is refused for viewers,
/// nodes and builders, and each accepted or refused call is in the audit table, stored with the action itself.
/// </summary>
public sealed class LifecycleTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private const string Node = "tools-k8s-worker-3";

    private static ReportRequest Report(string node, params Finding[] findings)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = "active" });
        r.Findings.AddRange(findings);
        return r;
    }

    private static Finding Missing(string subject, Severity severity = Severity.Error) =>
        new() { Kind = "missing-rule", Subject = subject, Message = $"no rule for {subject}", Severity = severity, Check = "kube-proxy.iptables" };

    private async Task<(CoordinatorHarness A, CoordinatorHarness B, string Db)> TwoAsync()
    {
        var db = "l" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        var b = await a.StartSiblingAsync();
        return (a, b, db);
    }

    private static async Task<List<(string Identity, string Action, string Result, string Detail)>> SqliteAuditAsync(CoordinatorHarness h)
    {
        var rows = new List<(string, string, string, string)>();
        await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT identity, action, result, detail FROM audit ORDER BY id";
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows.Add((r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3)));
        }

        return rows;
    }

    private async Task<List<(string Identity, string Action, string Result, string Detail)>> PostgresAuditAsync(string db)
    {
        var rows = new List<(string, string, string, string)>();
        await using var c = await pg.Server.OpenAsync(db);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT identity, action, result, detail FROM audit ORDER BY id";
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows.Add((r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3)));
        }

        return rows;
    }

    [Fact]
    public async Task Viewers_nodes_and_builders_are_refused_every_lifecycle_verb_and_each_refusal_is_audited_with_nothing_changed()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        await h.AgentClient(Node).ReportAsync(Report(Node, Missing("default/web:http")));
        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } } });
        var id = (await h.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Single().Id;
        Assert.Matches("^[0-9a-f]{12}$", id);

        foreach (var who in new[] { CoordinatorHarness.Viewer, Node, CoordinatorHarness.Builder })
        {
            var client = h.AdminClient(who);
            var calls = new Func<Task>[]
            {
                () => client.ForgetNodeAsync(new ForgetNodeRequest { Name = Node, Force = true }).ResponseAsync,
                () => client.CancelBuildAsync(new CancelBuildRequest { Id = build.Id }).ResponseAsync,
                () => client.AcknowledgeAsync(new AcknowledgeRequest { Id = id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(1)), Reason = "x" }).ResponseAsync,
            };
            foreach (var call in calls)
            {
                Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(call)).StatusCode);
            }
        }

        var viewer = h.AdminClient(CoordinatorHarness.Viewer);
        Assert.NotNull(await viewer.GetNodeAsync(new GetNodeRequest { Name = Node }));
        Assert.Equal(BuildState.Queued, (await viewer.GetBuildAsync(new GetBuildRequest { Id = build.Id })).State);
        Assert.Single((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings);
        var audit = await SqliteAuditAsync(h);
        foreach (var who in new[] { CoordinatorHarness.Viewer, Node, CoordinatorHarness.Builder })
        {
            foreach (var action in new[] { "forget-node", "cancel-build", "acknowledge" })
            {
                Assert.Single(audit, r => r.Identity == who && r.Action == action && r.Result == "denied");
            }
        }
    }

    [Fact]
    public async Task Forget_is_refused_while_the_node_reports_and_forced_it_goes_from_every_instance_and_every_watch()
    {
        var (a, b, db) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        await a.AgentClient(Node).ReportAsync(Report(Node, Missing("default/web:http")));
        await a.AgentClient("tools-k8s-worker-4").ReportAsync(Report("tools-k8s-worker-4"));
        Assert.True(await Peer.EventuallyAsync(async () => (await b.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes.Count == 2, TimeSpan.FromSeconds(10)));
        using var watch = a.AdminClient(CoordinatorHarness.Viewer).Watch(new WatchRequest());
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None)); // the snapshot

        // Still reporting: refused, with why, through the other instance.
        var admin = b.AdminClient(CoordinatorHarness.Admin);
        var refused = await Assert.ThrowsAsync<RpcException>(() => admin.ForgetNodeAsync(new ForgetNodeRequest { Name = Node }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("still reports", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("--force", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => admin.ForgetNodeAsync(new ForgetNodeRequest { Name = "no-such-node" }).ResponseAsync)).StatusCode);

        var forgotten = await admin.ForgetNodeAsync(new ForgetNodeRequest { Name = Node, Force = true, Reason = "decommissioned: T12345" });
        Assert.Equal(Node, forgotten.Forgotten.Name);

        // The watch on the other instance hears of it; neither instance shows it any more; the other node stays.
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            while (true)
            {
                Assert.True(await watch.ResponseStream.MoveNext(cts.Token));
                if (watch.ResponseStream.Current.EventCase == WatchEvent.EventOneofCase.NodeRemoved)
                {
                    Assert.Equal(Node, watch.ResponseStream.Current.NodeRemoved);
                    break;
                }
            }
        }

        foreach (var h in new[] { a, b })
        {
            var viewer = h.AdminClient(CoordinatorHarness.Viewer);
            Assert.Equal(["tools-k8s-worker-4"], (await viewer.ListNodesAsync(new ListNodesRequest())).Nodes.Select(n => n.Name));
            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => viewer.GetNodeAsync(new GetNodeRequest { Name = Node }).ResponseAsync)).StatusCode);
            Assert.Empty((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings);
        }

        Assert.Equal(0, await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM nodes WHERE name = '{Node}'", db));
        Assert.Equal(0, await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM agents WHERE node = '{Node}'", db));
        var audit = await PostgresAuditAsync(db);
        Assert.Single(audit, r => r.Action == "forget-node" && r.Result == "refused" && r.Detail.Contains("still reports", StringComparison.Ordinal));
        var accepted = Assert.Single(audit, r => r.Action == "forget-node" && r.Result == "accepted");
        Assert.Equal(CoordinatorHarness.Admin, accepted.Identity);
        Assert.Contains("decommissioned: T12345", accepted.Detail, StringComparison.Ordinal);

        // A node that keeps reporting comes back (as the refusal said).
        await a.AgentClient(Node).ReportAsync(Report(Node));
        Assert.True(await Peer.EventuallyAsync(async () => (await b.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes.Count == 2, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_stale_node_is_forgotten_without_force_and_the_forget_survives_a_restart()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        await h.AgentClient(Node).ReportAsync(Report(Node));
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => admin.ForgetNodeAsync(new ForgetNodeRequest { Name = Node }).ResponseAsync)).StatusCode);
        h.Time!.Advance(TimeSpan.FromMinutes(10)); // past 3 heartbeats: stale
        var response = await admin.ForgetNodeAsync(new ForgetNodeRequest { Name = Node });
        Assert.Equal(NodeState.Stale, response.Forgotten.State);
        await h.RestartAsync();
        Assert.Empty((await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes);
    }

    [Fact]
    public async Task An_acknowledged_finding_is_hidden_on_every_instance_and_told_to_its_agent_until_it_gets_worse_or_comes_back()
    {
        var (a, b, db) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        var agent = a.AgentClient(Node);
        await agent.ReportAsync(Report(Node, Missing("default/web:http", Severity.Warning), Missing("default/api:http")));
        Finding target = null!;
        Assert.True(await Peer.EventuallyAsync(async () =>
        {
            var list = (await b.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings;
            target = list.FirstOrDefault(f => f.Subject == "default/web:http")!;
            return list.Count == 2;
        }, TimeSpan.FromSeconds(10)));

        var admin = b.AdminClient(CoordinatorHarness.Admin);
        var invalid = await Assert.ThrowsAsync<RpcException>(() => admin.AcknowledgeAsync(new AcknowledgeRequest { Id = target.Id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(2)) }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains("reason", invalid.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => admin.AcknowledgeAsync(new AcknowledgeRequest { Id = target.Id, Duration = Duration.FromTimeSpan(TimeSpan.FromDays(31)), Reason = "r" }).ResponseAsync)).StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => admin.AcknowledgeAsync(new AcknowledgeRequest { Id = "000000000000", Duration = Duration.FromTimeSpan(TimeSpan.FromHours(2)), Reason = "r" }).ResponseAsync)).StatusCode);

        var acked = await admin.AcknowledgeAsync(new AcknowledgeRequest { Id = target.Id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(2)), Reason = "service being retired, T999" });
        Assert.Equal(CoordinatorHarness.Admin, acked.Acknowledged.By);

        // Hidden on both instances (A heard of it through the store), shown with --all, counted apart.
        foreach (var h in new[] { b, a })
        {
            var viewer = h.AdminClient(CoordinatorHarness.Viewer);
            Assert.True(await Peer.EventuallyAsync(async () => (await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings.Count == 1, TimeSpan.FromSeconds(10)));
            Assert.Equal("default/api:http", (await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings.Single().Subject);
            var all = (await viewer.ListFindingsAsync(new ListFindingsRequest { IncludeAcknowledged = true })).Findings;
            Assert.Equal(2, all.Count);
            var shown = all.Single(f => f.Id == target.Id);
            Assert.Equal("service being retired, T999", shown.Acknowledged.Reason);
            var summary = (await viewer.ListNodesAsync(new ListNodesRequest())).Nodes.Single();
            Assert.Equal((1, 1), (summary.Findings, summary.AcknowledgedFindings));
        }

        // The agent hears of it in its report's answer (through A, where it reports), and only of that one.
        var answer = await agent.ReportAsync(Report(Node, Missing("default/web:http", Severity.Warning), Missing("default/api:http")));
        var told = Assert.Single(answer.Acknowledged);
        Assert.Equal(("missing-rule", "default/web:http", Severity.Warning), (told.Kind, told.Subject, told.Severity));

        // Worse than acknowledged: it changed, so the acknowledgement ends (deleted with that report, on every
        // instance); back to the acknowledged severity, it stays ended.
        answer = await agent.ReportAsync(Report(Node, Missing("default/web:http", Severity.Error), Missing("default/api:http")));
        Assert.Empty(answer.Acknowledged);
        Assert.Equal(2, (await a.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Count);
        answer = await agent.ReportAsync(Report(Node, Missing("default/web:http", Severity.Warning), Missing("default/api:http")));
        Assert.Empty(answer.Acknowledged);
        Assert.Equal(0, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM acks", db));
        Assert.True(await Peer.EventuallyAsync(async () => (await b.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Count == 2, TimeSpan.FromSeconds(10)));
        answer = await agent.ReportAsync(Report(Node, Missing("default/web:http", Severity.Error), Missing("default/api:http")));

        // Acknowledged again (once B has taken in the new severity: an admin acknowledges what they see), then resolved
        // and back: a new finding, not acknowledged.
        Assert.True(await Peer.EventuallyAsync(async () => (await b.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Any(f => f.Id == target.Id && f.Severity == Severity.Error), TimeSpan.FromSeconds(10)));
        await admin.AcknowledgeAsync(new AcknowledgeRequest { Id = target.Id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(2)), Reason = "still retiring" });
        Assert.True(await Peer.EventuallyAsync(async () => (await a.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Count == 1, TimeSpan.FromSeconds(10)));
        await agent.ReportAsync(Report(Node, Missing("default/api:http")));
        await Task.Delay(5); // a later first_seen
        answer = await agent.ReportAsync(Report(Node, Missing("default/web:http", Severity.Error), Missing("default/api:http")));
        Assert.Empty(answer.Acknowledged);
        Assert.Equal(2, (await a.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Count);

        // Removing an acknowledgement that no longer holds is refused; every accepted call is audited once.
        Assert.True(await Peer.EventuallyAsync(async () => (await b.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings.Count == 2, TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => admin.AcknowledgeAsync(new AcknowledgeRequest { Id = target.Id, Remove = true }).ResponseAsync)).StatusCode);
        var audit = await PostgresAuditAsync(db);
        Assert.Equal(2, audit.Count(r => r.Action == "acknowledge" && r.Result == "accepted"));
        Assert.Contains(audit, r => r.Action == "acknowledge" && r.Result == "invalid");
    }

    [Fact]
    public async Task An_acknowledgement_ends_on_its_own_and_can_be_removed_and_an_unstored_one_is_not_shown()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        var agent = h.AgentClient(Node);
        await agent.ReportAsync(Report(Node, Missing("default/web:http")));
        var viewer = h.AdminClient(CoordinatorHarness.Viewer);
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        var id = (await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings.Single().Id;

        // The store refuses the write: nothing is acknowledged, nothing audited as accepted.
        await using (SqliteWriteLock.Take(h.DatabasePath))
        {
            var failed = await Assert.ThrowsAsync<RpcException>(() => admin.AcknowledgeAsync(new AcknowledgeRequest { Id = id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(1)), Reason = "r" }).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        }

        Assert.Single((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings);
        Assert.DoesNotContain(await SqliteAuditAsync(h), r => r.Action == "acknowledge");

        await admin.AcknowledgeAsync(new AcknowledgeRequest { Id = id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(1)), Reason = "r" });
        Assert.Empty((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings);
        h.Time!.Advance(TimeSpan.FromMinutes(61));
        Assert.Single((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings); // ended
        Assert.Empty((await agent.ReportAsync(Report(Node, Missing("default/web:http")))).Acknowledged);

        await admin.AcknowledgeAsync(new AcknowledgeRequest { Id = id, Duration = Duration.FromTimeSpan(TimeSpan.FromHours(1)), Reason = "again" });
        Assert.Empty((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings);
        await admin.AcknowledgeAsync(new AcknowledgeRequest { Id = id, Remove = true });
        Assert.Single((await viewer.ListFindingsAsync(new ListFindingsRequest())).Findings);
        await h.RestartAsync();
        Assert.Single((await h.AdminClient(CoordinatorHarness.Viewer).ListFindingsAsync(new ListFindingsRequest())).Findings); // the removal was stored
        Assert.Equal(["acknowledge", "acknowledge", "unacknowledge"], (await SqliteAuditAsync(h)).Where(r => r.Result == "accepted").Select(r => r.Action));
    }

    [Fact]
    public async Task A_queued_build_is_cancelled_at_once_and_a_running_one_is_stopped_by_its_builder_on_another_instance()
    {
        var (a, b, db) = await TwoAsync();
        await using var _a = a;
        await using var _b = b;
        var admin = b.AdminClient(CoordinatorHarness.Admin);

        // Queued with no builder: cancelled at once, on both instances.
        var queued = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } } });
        var cancelled = await admin.CancelBuildAsync(new CancelBuildRequest { Id = queued.Id, Reason = "nobody builds on Sundays" });
        Assert.Equal(BuildState.Cancelled, cancelled.State);
        Assert.True(await Peer.EventuallyAsync(async () => (await a.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = queued.Id })).State == BuildState.Cancelled, TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => admin.CancelBuildAsync(new CancelBuildRequest { Id = queued.Id }).ResponseAsync)).StatusCode);

        // Running on a builder connected to A; cancelled through B: the builder's stream on A is told.
        using var stream = a.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var running = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } }, Builder = CoordinatorHarness.Builder });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.True(await stream.ResponseStream.MoveNext(cts.Token));
        var command = stream.ResponseStream.Current;
        Assert.Equal(running.Id, command.BuildId);
        var builder = a.AgentClient(CoordinatorHarness.Builder);

        // CANCELLED is not something a builder may say unasked.
        var unasked = await Assert.ThrowsAsync<RpcException>(() => builder.ReportCommandProgressAsync(new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Cancelled }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, unasked.StatusCode);
        await builder.ReportCommandProgressAsync(new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running });
        Assert.True(await Peer.EventuallyAsync(async () => (await admin.ListBuildsAsync(new ListBuildsRequest())).Builds.Any(x => x.Id == running.Id && x.State == BuildState.Running), TimeSpan.FromSeconds(10)));

        var asked = await admin.CancelBuildAsync(new CancelBuildRequest { Id = running.Id, Reason = "wrong tag" });
        Assert.Equal(BuildState.Running, asked.State);
        Assert.Equal(CoordinatorHarness.Admin, asked.CancelRequestedBy);
        Assert.True(await stream.ResponseStream.MoveNext(cts.Token));
        var stop = stream.ResponseStream.Current;
        Assert.Equal(Command.BodyOneofCase.Cancel, stop.BodyCase);
        Assert.Equal((command.Id, "wrong tag"), (stop.Id, stop.Cancel.Reason));
        await builder.ReportCommandProgressAsync(new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Cancelled, Error = "cancelled by admin1.example: wrong tag" });
        foreach (var h in new[] { a, b })
        {
            Assert.True(await Peer.EventuallyAsync(async () => (await h.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = running.Id })).State == BuildState.Cancelled, TimeSpan.FromSeconds(10)));
        }

        // A builder that read its command and went away for good: the first cancel asks, the second ends it here, and
        // the builder, should it come back, is told so.
        var orphan = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } }, Builder = CoordinatorHarness.Builder });
        Assert.True(await stream.ResponseStream.MoveNext(cts.Token));
        var orphanCommand = stream.ResponseStream.Current;
        Assert.Equal(orphan.Id, orphanCommand.BuildId);
        stream.Dispose();
        Assert.True(await Peer.EventuallyAsync(async () => (await admin.ListBuildsAsync(new ListBuildsRequest())).Builds.Any(x => x.Id == orphan.Id && x.Builder == CoordinatorHarness.Builder), TimeSpan.FromSeconds(10)));
        Assert.Equal(BuildState.Queued, (await admin.CancelBuildAsync(new CancelBuildRequest { Id = orphan.Id })).State);
        var soon = await Assert.ThrowsAsync<RpcException>(() => admin.CancelBuildAsync(new CancelBuildRequest { Id = orphan.Id, Reason = "builder decommissioned" }).ResponseAsync);
        Assert.Contains("has not confirmed yet", soon.Status.Detail, StringComparison.Ordinal); // ended only after ForceCancelAfter (SQLite test)

        var audit = await PostgresAuditAsync(db);
        Assert.Equal(3, audit.Count(r => r.Action == "cancel-build" && r.Result == "accepted"));
        Assert.Single(audit, r => r.Action == "cancel-build" && r.Result == "refused"); // the second within the minute is counted, not written
    }

    private static async Task<Command> NextAsync(AsyncServerStreamingCall<Command> stream, CancellationToken ct)
    {
        Assert.True(await stream.ResponseStream.MoveNext(ct));
        return stream.ResponseStream.Current;
    }

    private static AsyncServerStreamingCall<Command> Stream(CoordinatorHarness h, params string[] running)
    {
        var hello = new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder };
        hello.Running.AddRange(running);
        return h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(hello);
    }

    [Fact]
    public async Task A_stop_request_made_while_the_builders_stream_was_down_reaches_it_when_it_comes_back_and_an_unread_one_gives_nothing_back()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stream = Stream(h);
        var first = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } }, Builder = CoordinatorHarness.Builder });
        var waiting = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python39/base" } }, Builder = CoordinatorHarness.Builder });
        // The two may arrive in either order: the stream's registration races the requests (a build requested while
        // the stream's offer of the earlier one is under way is handed over at once).
        var commands = new[] { await NextAsync(stream, cts.Token), await NextAsync(stream, cts.Token) }.ToDictionary(c => c.BuildId);
        var (c1, c2) = (commands[first.Id], commands[waiting.Id]);
        await h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(new CommandProgress { CommandId = c1.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running });

        // Asked to stop while connected but not read before the stream ends: the unread cancel gives nothing back.
        Assert.Equal(BuildState.Queued, (await admin.CancelBuildAsync(new CancelBuildRequest { Id = waiting.Id, Reason = "not needed" })).State);
        stream.Dispose();
        Assert.True(await Peer.EventuallyAsync(async () => !(await admin.GetNodeAsync(new GetNodeRequest { Name = CoordinatorHarness.Builder }).ResponseAsync.ContinueWith(t => t.IsCompletedSuccessfully && t.Result.Summary.Agents.Any(a => a.CommandsConnected))), TimeSpan.FromSeconds(10)));
        var held = await admin.GetBuildAsync(new GetBuildRequest { Id = waiting.Id });
        Assert.Equal((BuildState.Queued, CoordinatorHarness.Builder), (held.State, held.Builder)); // still the builder's, not offered again

        // The builder comes back holding both (one running, one waiting behind it): it is told to stop the waiting one.
        var again = Stream(h, c1.Id, c2.Id);
        var told = await NextAsync(again, cts.Token);
        Assert.Equal((Command.BodyOneofCase.Cancel, c2.Id, "not needed"), (told.BodyCase, told.Id, told.Cancel.Reason));
        await h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(new CommandProgress { CommandId = c2.Id, Node = CoordinatorHarness.Builder, State = BuildState.Cancelled });
        Assert.Equal(BuildState.Cancelled, (await admin.GetBuildAsync(new GetBuildRequest { Id = waiting.Id })).State);
        Assert.Equal(BuildState.Running, (await admin.GetBuildAsync(new GetBuildRequest { Id = first.Id })).State);
        again.Dispose();
    }

    [Fact]
    public async Task A_handed_over_build_asked_to_stop_whose_command_never_reached_its_builder_ends_cancelled_instead_of_going_back_to_the_queue()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var queue = h.Services.GetRequiredService<Builds.BuildQueue>();
        var admin = h.AdminClient(CoordinatorHarness.Admin);

        // builder1's stream: registered, but it never reads (it is leaving), as in GiveBackTests.
        var leaving = await queue.ConnectAsync(CoordinatorHarness.Builder);
        var build = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } }, Builder = CoordinatorHarness.Builder });
        Assert.Equal(CoordinatorHarness.Builder, (await admin.GetBuildAsync(new GetBuildRequest { Id = build.Id })).Builder);
        Assert.Equal(BuildState.Queued, (await admin.CancelBuildAsync(new CancelBuildRequest { Id = build.Id, Reason = "wrong" })).State); // asked

        // builder2 is connected: the build is not offered to it; it ends here.
        using var other = h.AgentClient(CoordinatorHarness.Builder2).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder2, Agent = AgentKind.Builder });
        var offered = other.ResponseStream.MoveNext(CancellationToken.None);
        await queue.DisconnectAsync(leaving);
        var ended = await admin.GetBuildAsync(new GetBuildRequest { Id = build.Id });
        Assert.Equal(BuildState.Cancelled, ended.State);
        Assert.Contains("before its builder builder1.example got it: wrong", ended.Error, StringComparison.Ordinal);

        // A later build goes to builder2 (its stream works): the cancelled one never did.
        var later = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python39/base" } } });
        Assert.True(await offered.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(later.Id, other.ResponseStream.Current.BuildId);
    }

    [Fact]
    public async Task A_second_cancel_ends_a_handed_over_build_only_once_its_builder_had_time_to_confirm()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var stream = Stream(h);
        var build = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } }, Builder = CoordinatorHarness.Builder });
        var command = await NextAsync(stream, cts.Token);
        await h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running });
        Assert.Equal(BuildState.Running, (await admin.CancelBuildAsync(new CancelBuildRequest { Id = build.Id })).State);
        Assert.Equal(Command.BodyOneofCase.Cancel, (await NextAsync(stream, cts.Token)).BodyCase);

        // Too soon: refused, saying from when a cancel ends it, and the builder is asked again.
        var soon = await Assert.ThrowsAsync<RpcException>(() => admin.CancelBuildAsync(new CancelBuildRequest { Id = build.Id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, soon.StatusCode);
        Assert.Contains("has not confirmed yet", soon.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(Command.BodyOneofCase.Cancel, (await NextAsync(stream, cts.Token)).BodyCase);
        Assert.Equal(BuildState.Running, (await admin.GetBuildAsync(new GetBuildRequest { Id = build.Id })).State);

        h.Time!.Advance(TimeSpan.FromMinutes(2));
        var ended = await admin.CancelBuildAsync(new CancelBuildRequest { Id = build.Id, Reason = "builder hung" });
        Assert.Equal(BuildState.Cancelled, ended.State);
        Assert.Contains("without its builder builder1.example confirming", ended.Error, StringComparison.Ordinal);
    }
}
