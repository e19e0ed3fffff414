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
    private static Action<JsonObject> Pools(int maxConcurrent, string minGap = "00:00:00", string ttl = "00:15:00") => c =>
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
                },
            },
        };

    private static RemediationLeaseRequest Take(string node, string incident = "i-1", string step = "cordon") => new() { Node = node, Incident = incident, Step = step };

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
        await using var a = await CoordinatorHarness.StartAsync(editConfig: c => { CoordinatorHarness.OnPostgres(pg.Server, db)(c); Pools(places)(c); });
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
}
