using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>
/// The ladder with the real coordinator's lease (CoordinatorLeaseGate, pool nfs, MaxConcurrent 1, LeaseTtl 5 min on
/// the coordinator's fake clock) and the fake API server: review gap A3 — a drain blocked by a PodDisruptionBudget with
/// the node cordoned keeps the pool's place for as long as the incident is open — and a lease lost mid-incident (the
/// agent silent past its life, another node took the place) lets no further write land.
/// </summary>
public sealed class LadderLeaseTests : IAsyncLifetime
{
    private const string NodeA = "tools-k8s-worker-nfs-1";
    private const string NodeB = "tools-k8s-worker-nfs-2";
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(5);
    private readonly TempDir _dir = new("ladder-lease");
    private readonly List<IDisposable> _owned = [];
    private readonly SteppedTime _time = new(DateTimeOffset.UtcNow);
    private CoordinatorHarness _h = null!;
    private FakeKubeApiServer _api = null!;

    private sealed class NoMachine : ILadderMachine
    {
        public List<string> Done { get; } = [];

        public string BootId() => "7f3c1e5a-0b1d-4c1e-9a55-1f2e3d4c5b6a";

        public Task RestartUnitAsync(string unit, CancellationToken ct) => Record("restart " + unit);

        public Task RebootAsync(CancellationToken ct) => Record("reboot");

        public Task HardResetAsync(IReadOnlyList<string> command, TimeSpan timeout, CancellationToken ct) => Record("hard-reset");

        private Task Record(string what)
        {
            Done.Add(what);
            return Task.CompletedTask;
        }
    }

    public async Task InitializeAsync()
    {
        _h = await CoordinatorHarness.StartAsync(fakeTime: true, editConfig: c => c["Coordinator"]!["Remediation"] = new JsonObject
        {
            ["Pools"] = new JsonObject
            {
                ["nfs"] = new JsonObject { ["Nodes"] = new JsonArray("tools-k8s-worker-nfs-*"), ["MaxConcurrent"] = 1, ["MinGap"] = "00:00:00", ["LeaseTtl"] = "00:05:00" },
            },
        });
        _api = await FakeKubeApiServer.StartAsync();
        _api.Put(FakeKubeApiServer.Node(NodeA));
    }

    public async Task DisposeAsync()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        await _api.DisposeAsync();
        await _h.DisposeAsync();
        _dir.Dispose();
    }

    private CoordinatorLeaseGate Gate(string node, TimeProvider time)
    {
        var (cert, key) = _h.Issue(node);
        var connection = new CoordinatorConnection(Support.Options(new ReportingOptions { Address = _h.Address, Certificate = cert, Key = key, CaBundle = _h.CaPath, CallTimeout = TimeSpan.FromSeconds(5) }));
        Directory.CreateDirectory(_dir[node]);
        var gate = new CoordinatorLeaseGate(connection, Support.Options(new NodeOptions { NodeName = node, StateDirectory = _dir[node] }),
            Support.Options(new KubernetesOptions { RequestTimeout = TimeSpan.FromSeconds(15) }), time, NullLogger<CoordinatorLeaseGate>.Instance);
        _owned.Add(gate);
        _owned.Add(connection);
        return gate;
    }

    private sealed class StuckUids(params string[] uids) : IStuckPods
    {
        public IReadOnlySet<string> OnNetworkMounts() => uids.ToHashSet(StringComparer.Ordinal);
    }

    private (LadderService Ladder, NoMachine Machine) Ladder(IRemediationGate gate) => Ladder(gate, out _);

    // The ladder as the daemon builds it; its agent's state comes out for a report, and a stand-in for the stuck-process
    // evidence's pods when a test names them (the real one maps /proc processes to pods).
    private (LadderService Ladder, NoMachine Machine) Ladder(IRemediationGate gate, out AgentState state, IStuckPods? stuckPods = null, TimeSpan? drainTimeout = null)
    {
        var ladder = new LadderOptions { Enabled = true };
        ladder.Triggers.StuckProcesses.Enabled = true;
        var remediation = Support.Options(new RemediationOptions
        {
            Drain = new DrainOptions { Enabled = true, Timeout = drainTimeout ?? TimeSpan.FromMinutes(1), PollInterval = Poll },
            Ladder = ladder,
        });
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig"]) };
        var client = new KubeClient(Support.Options(kubernetes));
        _owned.Add(client);
        var node = Support.Options(new NodeOptions { NodeName = NodeA, StateDirectory = _dir[NodeA] });
        state = Support.State(_time);
        var evidence = new StuckProcessEvidence();
        evidence.Publish([new StuckProcess(new DProcess(4242, 1, "php-fpm", "nfs_wait_on_request", false, "/mnt/nfs/labstore-secondary-tools-project (nfs4)"), TimeSpan.FromMinutes(12))], _time.GetUtcNow());
        var drainer = new Drainer(remediation, node, client, new ClusterView(kubernetes, NodeA, NullLogger<ClusterView>.Instance), state,
            stuckPods ?? new ProcStuckPods(evidence, Support.Options(new StuckProcessesOptions()), _time), gate, _time, NullLogger<Drainer>.Instance);
        var machine = new NoMachine();
        return (new LadderService(remediation, node, Support.Options(new KubeletOptions()), Support.Options(new CriOptions()), Support.Options(new StuckProcessesOptions()), state, evidence, drainer, gate, client, machine, _time, NullLogger<LadderService>.Instance), machine);
    }

    private async Task<LadderAction> TickAsync(LadderService ladder)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = ladder.TickAsync(cts.Token);
        while (true)
        {
            var tick = _time.TimerCreated.WaitAsync(cts.Token);
            if (await Task.WhenAny(run, tick) == run)
            {
                return await run;
            }

            _time.Advance(Poll);
        }
    }

    // The agent's report, as its ReportingService sends it (the coordinator's clock for sent_at).
    private async Task ReportAsync(string node, AgentState state)
    {
        var report = state.Snapshot(out _);
        report.Node = node;
        report.Agent = AgentKind.Node;
        report.AgentVersion = "1.0.0";
        report.SentAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(_h.Time!.GetUtcNow());
        await _h.AgentClient(node).ReportAsync(report);
    }

    private int WritesOf() => _api.Writes.Count(w => !w.Target.StartsWith("events/", StringComparison.Ordinal));

    [Fact]
    public async Task ADrainBlockedByABudget_KeepsThePoolsPlace_ForAsLongAsTheIncidentIsOpen_ThenALostLeaseWritesNothing()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", NodeA, new Dictionary<string, string> { ["app"] = "web" }));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", new Dictionary<string, string> { ["app"] = "web" }, disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2));
        var gateA = Gate(NodeA, _time);
        var (ladder, machine) = Ladder(gateA, out var state);

        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.Equal(Rung.Drain, ladder.Current!.Rung); // Blocked: never forced, cordoned, the incident open
        Assert.True(_api.GetNode(NodeA)!.Spec.Unschedulable);

        // Classified for the admin: in the Events (drain-blocked) and, through the agent's report, beside its lease in
        // `agentctl remediation status`.
        Assert.Contains(state.Snapshot(out _).Events, e => e.Kind == "drain-blocked" && e.Message.Contains("1 blocked by a PodDisruptionBudget (tool-a/web-0: ", StringComparison.Ordinal));
        foreach (var n in Enumerable.Range(2, 9))
        {
            await ReportAsync($"tools-k8s-worker-nfs-{n}", Support.State(_time)); // the pool's other nodes, as a real fleet reports (the breaker counts them)
        }

        await ReportAsync(NodeA, state);
        var lease = (await _h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest())).Pools.Single().Leases.Single();
        Assert.StartsWith("blocked: no drain within 60s, never forced: 1 pod", lease.Drain, StringComparison.Ordinal);
        var status = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "status");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains($"{NodeA} (evict, token 1, since", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("; drain blocked)", status.Stdout, StringComparison.Ordinal);
        var wide = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "status", "-o", "wide");
        Assert.Contains("; drain blocked: no drain within 60s, never forced: 1 pod", wide.Stdout, StringComparison.Ordinal);

        // The agent restarted (an upgrade) while the drain is blocked: the new process says it again from the drain's
        // record at its first tick, before any new drain (the rung's cooldown has not passed).
        var (again, _) = Ladder(gateA, out var restarted);
        Assert.Null(restarted.GetCheck(Drainer.Check));
        Assert.Equal(LadderAction.Wait, await TickAsync(again));
        Assert.Equal(state.GetCheck(Drainer.Check)!.Message, restarted.GetCheck(Drainer.Check)!.Message);
        Assert.Equal(CheckState.Warning, restarted.GetCheck(Drainer.Check)!.State);

        // 12 minutes on the coordinator's clock (more than twice the lease's life) with the drain blocked: renewed every
        // 4 minutes (the ladder's RenewInterval, here called by hand), the place stays ours and the other node waits.
        var gateB = Gate(NodeB, new FakeTimeProvider(DateTimeOffset.UtcNow));
        for (var i = 0; i < 3; i++)
        {
            _h.Time!.Advance(TimeSpan.FromMinutes(4));
            Assert.Null(await ladder.RenewAsync(CancellationToken.None));
        }

        Assert.Contains($"1 of 1 node(s) of the pool in remediation: {NodeA} (renew-drain since", await gateB.RefusesAsync("inc-b", "cordon", CancellationToken.None), StringComparison.Ordinal);

        // Now the agent is silent past the lease's life: the other node takes the place.
        _h.Time!.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(await gateB.RefusesAsync("inc-b", "cordon", CancellationToken.None));

        // Awake again: the renewal is refused and said; the drain's next try and every later tick write nothing.
        Assert.Contains("is no longer held", await ladder.RenewAsync(CancellationToken.None), StringComparison.Ordinal);
        var writes = WritesOf();
        for (var i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(5)); // the drain rung's cooldown
            await TickAsync(ladder);
        }

        Assert.Equal(writes, WritesOf());
        Assert.Empty(machine.Done);
        var view = await _h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest());
        Assert.Equal([NodeB], view.Pools.Single().Leases.Select(l => l.Node));
    }

    [Fact]
    public async Task ADrainLeftWithAPodStuckOnANetworkMount_IsClassifiedStuck_AndGoesOnToTheReboot_AfterTheGrace()
    {
        var pod = FakeKubeApiServer.Pod("tool-b", "cron-7", NodeA, grace: 30);
        _api.Put(pod);
        _api.StayTerminating("tool-b", "cron-7"); // its kubelet never confirms: processes in D on the NFS mount
        var gateA = Gate(NodeA, _time);
        var (ladder, machine) = Ladder(gateA, out var state, new StuckUids(pod.Metadata.Uid), drainTimeout: TimeSpan.FromMinutes(10));

        // Within the grace (StuckAfter, 2 min past the pod's deletion deadline) the drain waits, and says why: stuck.
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2)); // a hang's bound, not a figure
        var tick = ladder.TickAsync(cts.Token);
        while (state.GetCheck(Drainer.Check) is not { State: CheckState.Warning } c || !c.Message.StartsWith("stuck: ", StringComparison.Ordinal))
        {
            var timer = _time.TimerCreated.WaitAsync(cts.Token);
            Assert.NotSame(tick, await Task.WhenAny(tick, timer)); // ended before it said stuck
            _time.Advance(Poll);
        }

        await ReportAsync(NodeA, state);
        var lease = (await _h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest())).Pools.Single().Leases.Single();
        Assert.StartsWith("stuck: 1 pod left: 1 terminating (tool-b/cron-7", lease.Drain, StringComparison.Ordinal);
        Assert.Contains("; drain stuck)", (await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "remediation", "status")).Stdout, StringComparison.Ordinal);

        // Past the grace: only a reboot helps; the next rung is taken (this harness's machine records the reboot).
        while (!tick.IsCompleted)
        {
            var timer = _time.TimerCreated.WaitAsync(cts.Token);
            if (await Task.WhenAny(tick, timer) == timer)
            {
                _time.Advance(Poll);
            }
        }

        Assert.Equal(LadderAction.Drain, await tick);
        Assert.Empty(machine.Done); // the drain's tick asked for nothing more
        Assert.Equal(Rung.Reboot, ladder.Current!.Rung);
        Assert.Contains(state.Snapshot(out _).Events, e => e.Kind == "drain-stuck" && e.Message.Contains("only a reboot helps", StringComparison.Ordinal));
        Assert.StartsWith("stuck: ", state.GetCheck(Drainer.Check)!.Message, StringComparison.Ordinal);
        Assert.Equal(LadderAction.Reboot, await TickAsync(ladder));
        Assert.Equal(["reboot"], machine.Done);
    }

    [Fact]
    public async Task TheRenewal_NeverTakesALease_AnIncidentWithNoneHeld_LeavesThePoolsPlaceFree()
    {
        // Review B5: the renewal asked with token 0 and so took the pool's place (renew-recover after an unplanned
        // reboot, renew-drain before any cordon). Here: an incident at its recover rung, no lease held.
        var open = new Incident("stuck-processes-20261206T021500", "stuck-processes", null, Rung.Recover, _time.GetUtcNow(), _time.GetUtcNow(), "7f3c1e5a-0b1d-4c1e-9a55-1f2e3d4c5b6a");
        Directory.CreateDirectory(_dir[NodeA]);
        open.Save(_dir[NodeA]);
        var gateA = Gate(NodeA, _time);
        var (ladder, _) = Ladder(gateA);
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder)); // not green (processes in D): waits, asks nothing
        Assert.Null(await ladder.RenewAsync(CancellationToken.None));
        Assert.Null(await ladder.RenewAsync(CancellationToken.None));

        var gateB = Gate(NodeB, new FakeTimeProvider(DateTimeOffset.UtcNow));
        Assert.Null(await gateB.RefusesAsync("inc-b", "cordon", CancellationToken.None));
        var view = await _h.AdminClient(CoordinatorHarness.Viewer).ListRemediationAsync(new ListRemediationRequest());
        Assert.Equal([NodeB], view.Pools.Single().Leases.Select(l => l.Node));
    }

    [Fact]
    public async Task AnUnreadableIncidentRecord_KeepsTheLeaseItHeld_SoNoOtherNodeIsCordonedMeanwhile()
    {
        // Review A3, its lease: the record unreadable, the node possibly cordoned by it: the place is renewed, never freed.
        var gateA = Gate(NodeA, _time);
        Assert.Null(await gateA.RefusesAsync("inc-a", "cordon", CancellationToken.None));
        File.WriteAllText(Incident.PathIn(_dir[NodeA]), "{\"id\":\"inc-a\",\"trig");
        var (ladder, machine) = Ladder(gateA);
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        for (var i = 0; i < 3; i++)
        {
            _h.Time!.Advance(TimeSpan.FromMinutes(4));
            Assert.Null(await ladder.RenewAsync(CancellationToken.None));
        }

        var gateB = Gate(NodeB, new FakeTimeProvider(DateTimeOffset.UtcNow));
        Assert.Contains($"{NodeA} (renew-unknown since", await gateB.RefusesAsync("inc-b", "cordon", CancellationToken.None), StringComparison.Ordinal);
        Assert.Empty(machine.Done);
        Assert.Equal(0, WritesOf());
    }
}
