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

    private (LadderService Ladder, NoMachine Machine) Ladder(IRemediationGate gate)
    {
        var ladder = new LadderOptions { Enabled = true };
        ladder.Triggers.StuckProcesses.Enabled = true;
        var remediation = Support.Options(new RemediationOptions
        {
            Drain = new DrainOptions { Enabled = true, Timeout = TimeSpan.FromMinutes(1), PollInterval = Poll },
            Ladder = ladder,
        });
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig"]) };
        var client = new KubeClient(Support.Options(kubernetes));
        _owned.Add(client);
        var node = Support.Options(new NodeOptions { NodeName = NodeA, StateDirectory = _dir[NodeA] });
        var state = Support.State(_time);
        var evidence = new StuckProcessEvidence();
        evidence.Publish([new StuckProcess(new DProcess(4242, 1, "php-fpm", "nfs_wait_on_request", false, "/mnt/nfs/labstore-secondary-tools-project (nfs4)"), TimeSpan.FromMinutes(12))], _time.GetUtcNow());
        var drainer = new Drainer(remediation, node, client, new ClusterView(kubernetes, NodeA, NullLogger<ClusterView>.Instance), state,
            new ProcStuckPods(evidence, Support.Options(new StuckProcessesOptions()), _time), gate, _time, NullLogger<Drainer>.Instance);
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

    private int WritesOf() => _api.Writes.Count(w => !w.Target.StartsWith("events/", StringComparison.Ordinal));

    [Fact]
    public async Task ADrainBlockedByABudget_KeepsThePoolsPlace_ForAsLongAsTheIncidentIsOpen_ThenALostLeaseWritesNothing()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", NodeA, new Dictionary<string, string> { ["app"] = "web" }));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", new Dictionary<string, string> { ["app"] = "web" }, disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2));
        var gateA = Gate(NodeA, _time);
        var (ladder, machine) = Ladder(gateA);

        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.Equal(Rung.Drain, ladder.Current!.Rung); // Blocked: never forced, cordoned, the incident open
        Assert.True(_api.GetNode(NodeA)!.Spec.Unschedulable);

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
