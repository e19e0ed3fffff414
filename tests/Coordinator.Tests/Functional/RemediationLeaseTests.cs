using System.Text.Json.Nodes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Remediation pacing through the real RPCs: the pool decided by the coordinator from the node's certificate, a lease
/// per node, the pool's limit held across two instances sharing PostgreSQL, a stale holder refused, the admin view.
/// </summary>
public sealed class RemediationLeaseTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static Action<JsonObject> Pools(int maxConcurrent, string minGap = "00:00:00", string ttl = "00:15:00", int breakerNodes = 3) => c =>
        c["Coordinator"]!["Remediation"] = new JsonObject
        {
            ["Pools"] = new JsonObject
            {
                ["nfs"] = new JsonObject
                {
                    ["Nodes"] = new JsonArray("tools-k8s-worker-nfs-*"),
                    ["MaxConcurrent"] = maxConcurrent,
                    ["MinGap"] = minGap,
                    ["LeaseTtl"] = ttl,
                    ["BreakerNodes"] = breakerNodes,
                    ["BreakerPercent"] = 100,
                },
            },
        };

    private static RemediationLeaseRequest Take(string node, string incident = "i-1", string step = "cordon") => new() { Node = node, Incident = incident, Step = step };

    [Fact]
    public async Task Status_WithNoPool_SaysWhyInOneLine()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var status = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "status");
        Assert.True(status.ExitCode == 0, status.Stderr);
        Assert.Equal(string.Empty, status.Stdout);
        Assert.Equal("No remediation pools: the coordinator's Coordinator:Remediation:Pools is empty, so no node is remediated without an admin.", status.Stderr.Trim());
    }

    [Fact]
    public async Task A_node_takes_its_pools_lease_for_itself_only_others_wait_and_strangers_and_bad_requests_are_refused()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: Pools(1));
        var w1 = h.AgentClient("tools-k8s-worker-nfs-1");
        var granted = await w1.RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"));
        Assert.Equal((true, 1UL, "nfs", TimeSpan.FromMinutes(15)), (granted.Granted, granted.Token, granted.Pool, granted.ValidFor.ToTimeSpan()));

        var waiting = await h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-2", "i-7"));
        Assert.False(waiting.Granted);
        Assert.Contains("1 of 1 node(s) of the pool in remediation: tools-k8s-worker-nfs-1 (cordon since", waiting.Refusal, StringComparison.Ordinal);
        Assert.True(waiting.RetryAfter.ToTimeSpan() > TimeSpan.FromMinutes(14));

        var stranger = await h.AgentClient("tools-k8s-worker-7").RemediationLeaseAsync(Take("tools-k8s-worker-7"));
        Assert.False(stranger.Granted);
        Assert.Contains("tools-k8s-worker-7 is in no remediation pool (Coordinator:Remediation:Pools)", stranger.Refusal, StringComparison.Ordinal);

        // For another node, as a viewer or a builder, with strings the contract does not allow: refused, nothing stored.
        var forOther = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1")).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, forOther.StatusCode);
        foreach (var who in new[] { CoordinatorHarness.Viewer, CoordinatorHarness.Builder, CoordinatorHarness.Admin })
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient(who).RemediationLeaseAsync(Take(who)).ResponseAsync);
            Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        }

        var bad = await Assert.ThrowsAsync<RpcException>(() => w1.RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1", "i\n<0>x")).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Contains("incident: 1-64 of", bad.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", bad.Status.Detail, StringComparison.Ordinal);
        var zero = await Assert.ThrowsAsync<RpcException>(() => w1.RemediationLeaseAsync(new RemediationLeaseRequest { Node = "tools-k8s-worker-nfs-1", Incident = "i-1", Step = "uncordon", Release = true }).ResponseAsync);
        Assert.Contains("token 0 holds nothing", zero.Status.Detail, StringComparison.Ordinal);

        // The admin view: the pool and its one lease; nodes may not read it.
        var view = await h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest());
        var pool = Assert.Single(view.Pools);
        var lease = Assert.Single(pool.Leases);
        Assert.Equal(("nfs", 1, "tools-k8s-worker-nfs-1", "i-1", "cordon", 1UL), (pool.Name, pool.MaxConcurrent, lease.Node, lease.Incident, lease.Step, lease.Token));
        Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => h.AdminClient("tools-k8s-worker-nfs-1").ListRemediationAsync(new ListRemediationRequest()).ResponseAsync)).StatusCode);

        // Given back: the next node's turn (no gap configured), with the next token.
        var released = await w1.RemediationLeaseAsync(new RemediationLeaseRequest { Node = "tools-k8s-worker-nfs-1", Incident = "i-1", Step = "uncordon", Token = granted.Token, Release = true });
        Assert.Equal((false, false, ""), (released.Granted, released.Lost, released.Refusal));
        var next = await h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-2", "i-7"));
        Assert.Equal((true, 2UL), (next.Granted, next.Token));
    }

    [Fact]
    public async Task With_the_sqlite_store_locked_a_lease_request_is_unavailable_within_seconds_and_nothing_is_granted_then_it_is()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: Pools(1));
        var w1 = h.AgentClient("tools-k8s-worker-nfs-1");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await using (SqliteWriteLock.Take(h.DatabasePath))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => w1.RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"waited {sw.Elapsed} (Microsoft.Data.Sqlite's own 30 s default would have been past the agent's deadline)");
        }

        // Nothing was granted while refused: the first lease after the lock is token 1.
        var granted = await w1.RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"));
        Assert.Equal((true, 1UL), (granted.Granted, granted.Token));
    }

    [Fact]
    public async Task A_holder_silent_past_the_ttl_loses_its_lease_to_the_next_node_and_its_renewal_is_refused_as_lost()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true, editConfig: Pools(1, ttl: "00:05:00"));
        var first = await h.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"));
        Assert.True(first.Granted);
        h.Time!.Advance(TimeSpan.FromMinutes(5)); // exactly the TTL: gone
        var taken = await h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-2", "i-2"));
        Assert.Equal((true, 2UL), (taken.Granted, taken.Token));

        var stale = await h.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(new RemediationLeaseRequest { Node = "tools-k8s-worker-nfs-1", Incident = "i-1", Step = "reboot", Token = first.Token });
        Assert.Equal((false, true), (stale.Granted, stale.Lost));
        Assert.Contains("token 1 is no longer held", stale.Refusal, StringComparison.Ordinal);
        var view = await h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest());
        Assert.Equal(["tools-k8s-worker-nfs-2"], view.Pools.Single().Leases.Select(l => l.Node));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Ten_nodes_asking_at_once_through_two_instances_on_postgresql_get_exactly_the_pools_places_with_distinct_tokens(int places)
    {
        var db = "r" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: c => { CoordinatorHarness.OnPostgres(pg.Server, db)(c); Pools(places, breakerNodes: 100)(c); });
        await using var b = await a.StartSiblingAsync();
        var nodes = Enumerable.Range(1, 10).Select(i => $"tools-k8s-worker-nfs-{i}").ToList();
        var clients = nodes.Select((n, i) => (n, (i % 2 == 0 ? a : b).AgentClient(n))).ToList();
        using var go = new SemaphoreSlim(0);
        var asks = clients.Select(async x =>
        {
            await go.WaitAsync();
            return (await x.Item2.RemediationLeaseAsync(Take(x.n, "i-" + x.n[^1]))).Clone();
        }).ToList();
        go.Release(asks.Count);
        var answers = await Task.WhenAll(asks);

        var granted = answers.Where(r => r.Granted).ToList();
        Assert.Equal(places, granted.Count);
        Assert.Equal(Enumerable.Range(1, places).Select(i => (ulong)i), granted.Select(g => g.Token).Order());
        Assert.All(answers.Where(r => !r.Granted), r => Assert.Contains($"{places} of {places} node(s) of the pool in remediation", r.Refusal, StringComparison.Ordinal));
        foreach (var h in new[] { a, b })
        {
            var view = await h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest());
            Assert.Equal(places, view.Pools.Single().Leases.Count);
        }

        Assert.Equal(places, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM remediation_leases", db));
    }

    private static async Task<List<(string Identity, string Action, string Result, string Detail)>> AuditAsync(System.Data.Common.DbConnection c)
    {
        var rows = new List<(string, string, string, string)>();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT identity, action, result, detail FROM audit WHERE action LIKE 'remediation-%' ORDER BY id";
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows.Add((r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3)));
        }

        return rows;
    }

    [Fact]
    public async Task On_postgresql_a_storm_trips_the_breaker_across_instances_and_admins_reset_it_and_cancel_an_incident_through_agentctl_audited()
    {
        var db = "r" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: c => { CoordinatorHarness.OnPostgres(pg.Server, db)(c); Pools(1)(c); });
        await using var b = await a.StartSiblingAsync();

        // Four nodes become candidates, through both instances: the fourth trips the breaker; w-1 keeps its lease.
        var w1 = await a.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"));
        Assert.True(w1.Granted);
        for (var i = 2; i <= 3; i++)
        {
            Assert.Contains("1 of 1 node(s)", (await b.AgentClient($"tools-k8s-worker-nfs-{i}").RemediationLeaseAsync(Take($"tools-k8s-worker-nfs-{i}", $"i-{i}"))).Refusal, StringComparison.Ordinal);
        }

        var fourth = await a.AgentClient("tools-k8s-worker-nfs-4").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-4", "i-4"));
        Assert.Contains("the pool's storm breaker tripped now (4 node(s)", fourth.Refusal, StringComparison.Ordinal);
        var status = await b.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "status");
        Assert.Contains("BREAKER TRIPPED", status.Stdout, StringComparison.Ordinal);

        // Viewers may look, not act; an admin's reason is required where it says so.
        var viewer = await b.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "reset-breaker", "nfs");
        Assert.NotEqual(0, viewer.ExitCode);
        Assert.Contains("permission denied", viewer.Stderr, StringComparison.Ordinal);
        var noReason = await b.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "cancel", "tools-k8s-worker-nfs-1");
        Assert.Equal(2, noReason.ExitCode); // agentctl's own rule: the coordinator is not asked

        // The admin cancels w-1's incident on B: its renewal on A is refused as ended; then resets the breaker.
        var cancel = await b.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "cancel", "tools-k8s-worker-nfs-1", "--reason", "wrong node");
        Assert.True(cancel.ExitCode == 0, cancel.Stderr);
        Assert.Contains("tools-k8s-worker-nfs-1 incident i-1 cancelled by admin1.example", cancel.Stdout, StringComparison.Ordinal);
        var renewal = await a.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(new RemediationLeaseRequest { Node = "tools-k8s-worker-nfs-1", Incident = "i-1", Step = "evict", Token = w1.Token });
        Assert.Equal((false, true, true), (renewal.Granted, renewal.Lost, renewal.Ended));
        // Told so, its agent stops and gives the lease back (until then its place stays taken: it may be acting, out of earshot).
        await a.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(new RemediationLeaseRequest { Node = "tools-k8s-worker-nfs-1", Incident = "i-1", Step = "release", Token = w1.Token, Release = true });
        Assert.Contains("breaker", (await a.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-2", "i-2"))).Refusal, StringComparison.Ordinal);

        var reset = await a.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "reset-breaker", "nfs", "--reason", "storm over");
        Assert.True(reset.ExitCode == 0, reset.Stderr);
        var again = await a.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "reset-breaker", "nfs");
        Assert.Contains("pool nfs's storm breaker has not tripped", again.Stderr, StringComparison.Ordinal);
        Assert.True((await b.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-2", "i-2"))).Granted);

        await using var conn = await pg.Server.OpenAsync(db);
        var audit = await AuditAsync(conn);
        Assert.Equal(
            [
                ("admin1.example", "remediation-cancel", "accepted"),
                ("admin1.example", "remediation-reset-breaker", "accepted"),
                ("admin1.example", "remediation-reset-breaker", "refused"),
            ],
            audit.Where(r => r.Identity == CoordinatorHarness.Admin).Select(r => (r.Identity, r.Action, r.Result)));
        Assert.Contains(audit, r => r.Result == "accepted" && r.Detail == "pool=nfs node=tools-k8s-worker-nfs-1 reason=wrong node");
    }

    [Fact]
    public async Task On_sqlite_a_paused_pool_and_a_paused_node_take_no_lease_until_resumed_and_each_action_is_audited_with_it()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: Pools(2));
        var pause = await h.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "pause", "nfs", "--reason", "NFS maintenance");
        Assert.True(pause.ExitCode == 0, pause.Stderr);
        Assert.Contains("the pool is paused by admin1.example", (await h.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"))).Refusal, StringComparison.Ordinal);
        Assert.True((await h.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "resume", "nfs")).ExitCode == 0);
        Assert.True((await h.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "pause", "tools-k8s-worker-nfs-1", "--reason", "hardware ticket")).ExitCode == 0);
        Assert.Contains("tools-k8s-worker-nfs-1 is paused by admin1.example", (await h.AgentClient("tools-k8s-worker-nfs-1").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-1"))).Refusal, StringComparison.Ordinal);
        Assert.True((await h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Take("tools-k8s-worker-nfs-2", "i-2"))).Granted);
        var unknown = await h.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "pause", "tools-k8s-worker-7", "--reason", "x");
        Assert.Contains("is neither a remediation pool (nfs) nor a node of one", unknown.Stderr, StringComparison.Ordinal);

        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var audit = await AuditAsync(c);
        Assert.Equal(
            [("remediation-pause", "accepted", "pool=nfs reason=NFS maintenance"), ("remediation-resume", "accepted", "pool=nfs reason="),
             ("remediation-pause", "accepted", "pool=nfs node=tools-k8s-worker-nfs-1 reason=hardware ticket")],
            audit.Where(r => r.Result == "accepted").Select(r => (r.Action, r.Result, r.Detail)));
        Assert.Single(audit, r => r.Result == "refused");
    }
    [Fact]
    public async Task The_status_shows_the_holds_the_pools_node_agents_report_beside_the_coordinators_pauses()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: Pools(1));
        async Task ReportHold(string node, CheckState state, string message)
        {
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.UtcNow) };
            r.Checks.Add(new CheckResult { Name = "remediation.hold", State = state, Message = message });
            await h.AgentClient(node).ReportAsync(r);
        }

        const string puppet = "held: /var/lib/puppet/state/agent_disabled.lock exists (puppet's agent is disabled: someone is working on this node): no incident starts, an open one's reboot, hard reset and uncordon wait";
        await ReportHold("tools-k8s-worker-nfs-1", CheckState.Warning, puppet);
        await ReportHold("tools-k8s-worker-nfs-3", CheckState.Ok, "no hold");
        await ReportHold("tools-k8s-worker-7", CheckState.Warning, "held: the Node has the label remediation.toolforge.org/hold"); // in no pool
        Assert.True((await h.AgentCtlAsync(CoordinatorHarness.Admin, "remediation", "pause", "tools-k8s-worker-nfs-2", "--reason", "hardware ticket")).ExitCode == 0);

        var pool = (await h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest())).Pools.Single();
        Assert.Equal([("tools-k8s-worker-nfs-2", "paused", "admin1.example"), ("tools-k8s-worker-nfs-1", "held", "node-agent")], pool.Holds.Select(x => (x.Node, x.Kind, x.By)));
        Assert.Equal(puppet, pool.Holds.Single(x => x.Kind == "held").Reason);

        var status = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "status");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("tools-k8s-worker-nfs-2 paused by admin1.example", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("tools-k8s-worker-nfs-1 held: /var/lib/puppet/state/agent_disabled.lock exists", status.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("tools-k8s-worker-7", status.Stdout, StringComparison.Ordinal);

        // The hold lifted on the node: gone from the status at the agent's next report.
        await ReportHold("tools-k8s-worker-nfs-1", CheckState.Ok, "no hold");
        Assert.DoesNotContain((await h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest())).Pools.Single().Holds, x => x.Kind == "held");
    }
}
