using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The drain's gate against a real coordinator: the pool's lease taken before the first write and renewed before
/// each one, a node that must wait, a holder that was silent past the lease's life and taken over writing nothing, an
/// unreachable coordinator leaving a valid lease usable only until it runs out on the agent's own clock.
/// </summary>
public sealed class CoordinatorLeaseGateTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("lease-gate");
    private readonly List<IDisposable> _owned = [];
    private CoordinatorHarness _h = null!;

    public async Task InitializeAsync() =>
        _h = await CoordinatorHarness.StartAsync(fakeTime: true, editConfig: c => c["Coordinator"]!["Remediation"] = new JsonObject
        {
            ["Pools"] = new JsonObject
            {
                ["nfs"] = new JsonObject { ["Nodes"] = new JsonArray("tools-k8s-worker-nfs-*"), ["MaxConcurrent"] = 1, ["MinGap"] = "00:00:00", ["LeaseTtl"] = "00:05:00" },
            },
        });

    public async Task DisposeAsync()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        await _h.DisposeAsync();
        _dir.Dispose();
    }

    private (CoordinatorLeaseGate Gate, FakeTimeProvider Time, ListLogger<CoordinatorLeaseGate> Log) Gate(string node, string? address = null)
    {
        var (cert, key) = _h.Issue(node);
        var connection = new CoordinatorConnection(Support.Options(new ReportingOptions { Address = address ?? _h.Address, Certificate = cert, Key = key, CaBundle = _h.CaPath, CallTimeout = TimeSpan.FromSeconds(5) }));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var log = new ListLogger<CoordinatorLeaseGate>();
        Directory.CreateDirectory(_dir[node]);
        var gate = new CoordinatorLeaseGate(connection, Support.Options(new NodeOptions { NodeName = node, StateDirectory = _dir[node] }),
            Support.Options(new KubernetesOptions { RequestTimeout = TimeSpan.FromSeconds(15) }), time, log);
        _owned.Add(gate);
        _owned.Add(connection);
        return (gate, time, log);
    }

    [Fact]
    public async Task The_lease_is_taken_at_the_first_write_renewed_at_each_and_given_back_at_the_end_while_another_node_waits()
    {
        var (a, _, aLog) = Gate("tools-k8s-worker-nfs-1");
        var (b, _, _) = Gate("tools-k8s-worker-nfs-2");
        Assert.Null(await a.RefusesAsync("inc-a", "cordon", CancellationToken.None));
        Assert.Null(await a.RefusesAsync("inc-a", "evict", CancellationToken.None));
        Assert.Single(aLog.Lines, l => l.Message.Contains("lease of pool nfs is ours (token 1)", StringComparison.Ordinal)); // said once, not per renewal
        Assert.Equal("inc-a 1\n", await File.ReadAllTextAsync(_dir["tools-k8s-worker-nfs-1/node-agent.remediation-lease"]));

        var waiting = await b.RefusesAsync("inc-b", "cordon", CancellationToken.None);
        Assert.Contains("the coordinator's lease: 1 of 1 node(s) of the pool in remediation: tools-k8s-worker-nfs-1 (evict since", waiting, StringComparison.Ordinal);

        await a.ReleaseAsync("inc-a", CancellationToken.None);
        Assert.False(File.Exists(_dir["tools-k8s-worker-nfs-1/node-agent.remediation-lease"]));
        Assert.Null(await b.RefusesAsync("inc-b", "cordon", CancellationToken.None));
        var view = await _h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest());
        Assert.Equal([("tools-k8s-worker-nfs-2", 2UL)], view.Pools.Single().Leases.Select(l => (l.Node, l.Token)));
    }

    [Fact]
    public async Task A_holder_silent_past_the_lease_and_taken_over_writes_nothing_more_even_with_its_old_token_on_disk()
    {
        var (a, _, aLog) = Gate("tools-k8s-worker-nfs-1");
        Assert.Null(await a.RefusesAsync("inc-a", "cordon", CancellationToken.None));
        _h.Time!.Advance(TimeSpan.FromMinutes(5)); // the lease's life, unrenewed (the agent was frozen)
        var (b, _, _) = Gate("tools-k8s-worker-nfs-2");
        Assert.Null(await b.RefusesAsync("inc-b", "cordon", CancellationToken.None));

        // A wakes up: every further write is refused, whatever step; the token is dropped.
        var writes = 0;
        foreach (var step in new[] { "evict", "evict", "reboot", "uncordon" })
        {
            if (await a.RefusesAsync("inc-a", step, CancellationToken.None) is null)
            {
                writes++;
            }
        }

        Assert.Equal(0, writes);
        Assert.Single(aLog.Lines, l => l.Message.Contains("(token 1) is lost: token 1 is no longer held", StringComparison.Ordinal));
        Assert.False(File.Exists(_dir["tools-k8s-worker-nfs-1/node-agent.remediation-lease"]));

        // An agent started afresh with the stale token on disk is no better off.
        await File.WriteAllTextAsync(_dir["tools-k8s-worker-nfs-1/node-agent.remediation-lease"], "inc-a 1\n");
        var (again, _, _) = Gate("tools-k8s-worker-nfs-1");
        Assert.Contains("token 1 is no longer held", await again.RefusesAsync("inc-a", "uncordon", CancellationToken.None), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_coordinator_unreachable_a_valid_lease_acts_until_its_life_less_a_writes_margin_and_no_lease_never_acts()
    {
        var (a, aTime, _) = Gate("tools-k8s-worker-nfs-1");
        Assert.Null(await a.RefusesAsync("inc-a", "cordon", CancellationToken.None));
        var port = _h.Port;
        await _h.StopAsync();

        // valid_for 5 min, margin 2 x RequestTimeout = 30 s: usable until 4 min 30 s after the request was sent.
        aTime.Advance(TimeSpan.FromMinutes(4.5) - TimeSpan.FromTicks(1));
        Assert.Null(await a.RefusesAsync("inc-a", "evict", CancellationToken.None));
        aTime.Advance(TimeSpan.FromTicks(1));
        Assert.Contains("no lease held that is still valid; waiting", await a.RefusesAsync("inc-a", "evict", CancellationToken.None), StringComparison.Ordinal);

        var (b, _, _) = Gate("tools-k8s-worker-nfs-2", $"https://127.0.0.1:{port}");
        Assert.Contains("the coordinator's lease: no answer (Unavailable", await b.RefusesAsync("inc-b", "cordon", CancellationToken.None), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_coordinator_unreachable_a_valid_lease_never_cordons_reboots_nor_hard_resets_but_evicts()
    {
        // Review A1: the lease held and valid, the coordinator silent: the gated steps wait for an answer (fail closed).
        var (a, aTime, _) = Gate("tools-k8s-worker-nfs-1");
        Assert.Null(await a.RefusesAsync("inc-a", "cordon", CancellationToken.None));
        await _h.StopAsync();
        aTime.Advance(TimeSpan.FromMinutes(1));
        foreach (var step in new[] { "reboot", "cordon", "hard-reset" })
        {
            Assert.Contains($"the {step} step acts only on the coordinator's answer", await a.RefusesAsync("inc-a", step, CancellationToken.None), StringComparison.Ordinal);
        }

        Assert.Null(await a.RefusesAsync("inc-a", "evict", CancellationToken.None));
        Assert.Null(await a.RenewAsync("inc-a", "renew-reboot", CancellationToken.None));
    }

    [Fact]
    public async Task An_incident_an_admin_cancels_is_told_ended_gives_its_lease_back_at_once_and_stays_ended_after_a_restart()
    {
        var (a, _, aLog) = Gate("tools-k8s-worker-nfs-1");
        Assert.Null(await a.RefusesAsync("inc-a", "cordon", CancellationToken.None));
        await _h.AdminClient(CoordinatorHarness.Admin).ControlRemediationAsync(new ControlRemediationRequest { Action = RemediationAction.Cancel, Target = "tools-k8s-worker-nfs-1", Reason = "wrong node" });

        Assert.False(a.HasEnded("inc-a"));
        Assert.Contains("incident inc-a was cancelled by admin1.example", await a.RefusesAsync("inc-a", "evict", CancellationToken.None), StringComparison.Ordinal);
        Assert.True(a.HasEnded("inc-a"));
        Assert.Single(aLog.Lines, l => l.Message.Contains("(token 1) of incident inc-a given back", StringComparison.Ordinal));

        // Its place is free now, not at the lease's expiry; and the agent started afresh still knows the incident ended.
        var (b, _, _) = Gate("tools-k8s-worker-nfs-2");
        Assert.Null(await b.RefusesAsync("inc-b", "cordon", CancellationToken.None));
        var (restarted, _, _) = Gate("tools-k8s-worker-nfs-1");
        Assert.True(restarted.HasEnded("inc-a"));
        Assert.False(restarted.HasEnded("inc-c"));
    }

    [Fact]
    public async Task Without_a_coordinator_nothing_acts()
    {
        using var connection = new CoordinatorConnection(Support.Options(new ReportingOptions()));
        using var gate = new CoordinatorLeaseGate(connection, Support.Options(new NodeOptions { StateDirectory = _dir.Path }), Support.Options(new KubernetesOptions()), TimeProvider.System, new ListLogger<CoordinatorLeaseGate>());
        Assert.Contains("no coordinator is configured", await gate.RefusesAsync("i", "cordon", CancellationToken.None), StringComparison.Ordinal);
    }
}
