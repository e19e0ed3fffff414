using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>
/// The ladder's service against the fake API server (tests/TestSupport/FakeKubeApiServer), with the machine (D-Bus,
/// logind, boot id) and the coordinator's lease as stand-ins that record what they were asked; time is a fake clock
/// moved only when the drain waits for its next poll, or by the test between ticks. An agent restart is a new service
/// reading the same StateDirectory.
/// </summary>
public sealed class LadderServiceTests : IAsyncLifetime
{
    private const string Node = "tools-k8s-worker-nfs-3";
    private const string Boot1 = "7f3c1e5a-0b1d-4c1e-9a55-1f2e3d4c5b6a";
    private const string Boot2 = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a";
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(5);
    private readonly TempDir _dir = new();
    private readonly ConcurrentQueue<AgentEvent> _events = new();
    private readonly List<KubeClient> _clients = [];
    private readonly SteppedTime _time = new(DateTimeOffset.UtcNow); // the fake API server dates deletions by the real clock
    private readonly StuckProcessEvidence _stuck = new();
    private readonly FakeMachine _machine = new();
    private readonly RecordingGate _gate = new();
    private FakeKubeApiServer _api = null!;
    private AgentState _state = null!;

    private sealed class FakeMachine : ILadderMachine
    {
        public string Boot { get; set; } = Boot1;

        public ConcurrentQueue<string> Done { get; } = new();

        public string? Fails { get; set; }

        public Exception? BootFails { get; set; }

        public string BootId() => BootFails is { } e ? throw e : Boot;

        public Task RestartUnitAsync(string unit, CancellationToken ct) => Act("restart " + unit);

        public Task RebootAsync(CancellationToken ct) => Act("reboot");

        public Task HardResetAsync(IReadOnlyList<string> command, TimeSpan timeout, CancellationToken ct) => Act("hard-reset " + string.Join(' ', command));

        private Task Act(string what)
        {
            Done.Enqueue(what);
            return Fails is { } why ? Task.FromException(new LadderActionException(why)) : Task.CompletedTask;
        }
    }

    /// <summary>The coordinator's lease as the ladder sees it: every step asked is recorded; Refuse (as a lost lease) refuses; Ended as an admin's cancel.</summary>
    private sealed class RecordingGate : IRemediationGate
    {
        public ConcurrentQueue<string> Asked { get; } = new();

        public ConcurrentQueue<string> Released { get; } = new();

        public string? Refuse { get; set; }

        public string? Ended { get; set; }

        public Exception? RenewThrows { get; set; }

        public ValueTask<string?> RenewAsync(string incident, string step, CancellationToken ct) =>
            RenewThrows is { } e ? throw e : RefusesAsync(incident, step, ct);

        public ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct)
        {
            Asked.Enqueue(step);
            return ValueTask.FromResult(Ended == incident ? "ended by an admin" : Refuse);
        }

        public ValueTask ReleaseAsync(string incident, CancellationToken ct)
        {
            Released.Enqueue(incident);
            return ValueTask.CompletedTask;
        }

        public bool HasEnded(string incident) => Ended == incident;
    }

    public async Task InitializeAsync()
    {
        _api = await FakeKubeApiServer.StartAsync();
        _api.Put(FakeKubeApiServer.Node(Node));
        Directory.CreateDirectory(_dir["state"]);
        _state = Support.State(_time);
        _state.EventAdded += _events.Enqueue;
    }

    public async Task DisposeAsync()
    {
        foreach (var c in _clients)
        {
            c.Dispose();
        }

        await _api.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>What node.stuck-processes maps to pods, where the test is about the ladder's decisions (the real /proc path has its own test in DrainTests).</summary>
    private sealed class StuckSeen : IStuckPods
    {
        public HashSet<string> Uids { get; } = new(StringComparer.Ordinal);

        public IReadOnlySet<string> OnNetworkMounts() => Uids;
    }

    private LadderService Make(Action<LadderOptions>? edit = null, IStuckPods? stuckPods = null)
    {
        var ladder = new LadderOptions { Enabled = true };
        ladder.Triggers.StuckProcesses.Enabled = true;
        ladder.Triggers.Runtime.Enabled = true;
        edit?.Invoke(ladder);
        var remediation = Support.Options(new RemediationOptions
        {
            Drain = new DrainOptions { Enabled = true, Timeout = TimeSpan.FromMinutes(1), PollInterval = Poll, StuckAfter = TimeSpan.FromMinutes(1) },
            Ladder = ladder,
        });
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig"]) };
        var client = new KubeClient(Support.Options(kubernetes));
        _clients.Add(client);
        var node = Support.Options(new NodeOptions { NodeName = Node, StateDirectory = _dir["state"] });
        var drainer = new Drainer(remediation, node, client, new ClusterView(kubernetes, Node, NullLogger<ClusterView>.Instance), _state,
            stuckPods ?? new ProcStuckPods(_stuck, Support.Options(new StuckProcessesOptions()), _time), _gate, _time, NullLogger<Drainer>.Instance);
        return new LadderService(remediation, node, Support.Options(new KubeletOptions()), Support.Options(new CriOptions()), Support.Options(new StuckProcessesOptions()), _state, _stuck, drainer, _gate, client, _machine, _time, NullLogger<LadderService>.Instance);
    }

    // A tick, moving the clock by one poll each time the drain waits.
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

    private void StuckOnNfs(TimeSpan @for) =>
        _stuck.Publish(@for == TimeSpan.Zero ? [] : [new StuckProcess(new DProcess(4242, 1, "php-fpm", "nfs_wait_on_request", false, "/mnt/nfs/labstore-secondary-tools-project (nfs4)"), @for)], _time.GetUtcNow());

    private List<string> Kinds() => _events.Select(e => e.Kind).ToList();

    private List<string> WriteLines() => _api.Writes.Where(w => !w.Target.StartsWith("events/", StringComparison.Ordinal)).Select(w => $"{w.Verb} {w.Target} {w.Code}").ToList();

    private CordonMark? Mark() => CordonMark.Read(_api.GetNode(Node)!.Metadata.Annotations?.ToDictionary());

    // From the trigger to the reboot: opened, cordoned and drained, rebooted once.
    private async Task<LadderService> UpToTheRebootAsync()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make();
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.Equal(Rung.Reboot, ladder.Current!.Rung);
        Assert.Equal("reboot", Mark()!.Step); // written before the reboot is asked
        Assert.Equal(LadderAction.Reboot, await TickAsync(ladder));
        Assert.Equal(["reboot"], _machine.Done);
        return ladder;
    }

    [Fact]
    public async Task StuckOnNfs_CordonDrainRebootOnce_BackAfterTheRestart_ReadyAndGreenForHealthyFor_ThenUncordoned()
    {
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig-events"]) };
        using var eventsClient = new KubeClient(Support.Options(kubernetes));
        using var recorder = new NodeEventRecorder(Support.Options(new NodeConditionsOptions { Enabled = true }), eventsClient, new ClusterView(kubernetes, Node, NullLogger<ClusterView>.Instance), _state, _time, NullLogger<NodeEventRecorder>.Instance);
        await UpToTheRebootAsync();

        // The machine reboots: a new boot, a new agent reading the same StateDirectory; the stuck processes are gone.
        _machine.Boot = Boot2;
        StuckOnNfs(TimeSpan.Zero);
        var after = Make();
        Assert.Equal(LadderAction.Wait, await TickAsync(after));
        Assert.Equal(Rung.Recover, after.Current!.Rung);
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Equal(("recover", false), (Mark()!.Step, Mark()!.UnschedulableBefore)); // the rung in our mark; its prior state kept

        Assert.Equal(LadderAction.Wait, await TickAsync(after)); // Ready and green from now
        var since = _time.GetUtcNow();
        Assert.Equal(since, after.Current!.HealthySince);
        _time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        StuckOnNfs(TimeSpan.Zero);
        Assert.Equal(LadderAction.Wait, await TickAsync(after));
        _time.Advance(TimeSpan.FromSeconds(1));
        StuckOnNfs(TimeSpan.Zero);
        Assert.Equal(LadderAction.Uncordon, await TickAsync(after));

        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Null(Mark());
        Assert.Equal("recovered: uncordoned", after.Current!.End);
        Assert.Equal(["reboot"], _machine.Done); // one reboot, whatever restarted
        // cordon, eviction, our mark's step -> reboot, -> recover, uncordon (and the mark removed)
        Assert.Equal(["PATCH nodes/" + Node + " 200", "POST pods/tool-a/web-0/eviction 201", "PATCH nodes/" + Node + " 200", "PATCH nodes/" + Node + " 200", "PATCH nodes/" + Node + " 200"], WriteLines());
        Assert.Contains(after.Current.Id, _gate.Released);
        Assert.Equal(
            ["ladder-opened", "drain-cordoned", "drain-done", "ladder-escalated", "ladder-reboot", "ladder-rebooted", "ladder-healthy", "drain-uncordoned", "ladder-ended"],
            Kinds());
        Assert.Null(DrainRecord.Load(_dir["state"]));

        // Every step a Node Event: the ladder's own and the drain's, Warning until it went as wished.
        await recorder.FlushAsync(CancellationToken.None);
        var events = _api.Events.ToDictionary(e => e.Reason, e => e.Type);
        Assert.Equal("Warning", events["LadderOpened"]);
        Assert.Equal("Warning", events["LadderReboot"]);
        Assert.Equal("Normal", events["LadderRebooted"]);
        Assert.Equal("Normal", events["LadderHealthy"]);
        Assert.Equal("Normal", events["LadderEnded"]);
        Assert.Equal("Normal", events["DrainUncordoned"]);
        Assert.Contains(_api.Events, e => e.Reason == "LadderOpened" && e.Message.Contains("processes in D on a network mount for 12 min", StringComparison.Ordinal));

        // The same trouble again at once: no new incident before the ladder's Cooldown.
        StuckOnNfs(TimeSpan.FromMinutes(12));
        Assert.Equal(LadderAction.Wait, await TickAsync(after));
        Assert.NotNull(after.Current.Ended);
        Assert.Equal(5, WriteLines().Count);
    }

    [Fact]
    public async Task ADrainBlockedOnlyByABudget_NeverReachesTheReboot_OnePodStuckInDOnAMount_DoesAfterTheGrace()
    {
        // Blocked: a budget allows no disruption. Tried again every Drain:Cooldown for hours: never forced, never rebooted.
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, new Dictionary<string, string> { ["app"] = "web" }));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", new Dictionary<string, string> { ["app"] = "web" }, disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var seen = new StuckSeen();
        var ladder = Make(stuckPods: seen);
        for (var i = 0; i < 30; i++)
        {
            StuckOnNfs(TimeSpan.FromMinutes(12));
            await TickAsync(ladder);
            _time.Advance(TimeSpan.FromMinutes(5));
        }

        Assert.Equal(Rung.Drain, ladder.Current!.Rung);
        Assert.Empty(_machine.Done);
        Assert.Contains("drain-blocked", Kinds());
        Assert.Contains("ladder-stalled", Kinds()); // past Drain:Timeout (2 h): said once, for an admin
        Assert.Single(Kinds(), k => k == "ladder-stalled");
        Assert.NotNull(_api.GetPod("tool-a", "web-0"));

        // The budget gives way; the one pod left stays Terminating with a process in D on the NFS mount: stuck, reboot.
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", new Dictionary<string, string> { ["app"] = "web" }, disruptionsAllowed: 1, currentHealthy: 3, desiredHealthy: 2));
        _api.StayTerminating("tool-a", "web-0");
        seen.Uids.Add(_api.GetPod("tool-a", "web-0")!.Metadata.Uid);
        StuckOnNfs(TimeSpan.FromMinutes(12));
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder)); // evicted: Terminating, within its grace and StuckAfter
        Assert.DoesNotContain("drain-stuck", Kinds());
        Assert.Equal(Rung.Drain, ladder.Current!.Rung);
        _time.Advance(TimeSpan.FromMinutes(5));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.Contains("drain-stuck", Kinds());
        Assert.Equal(Rung.Reboot, ladder.Current!.Rung);
        Assert.Equal(LadderAction.Reboot, await TickAsync(ladder));
        Assert.Equal(["reboot"], _machine.Done);
    }

    [Fact]
    public async Task AnAgentRestarted_AfterTheRebootWasAsked_InTheSameBoot_NeverAsksAgain_AndStallsForAnAdmin()
    {
        await UpToTheRebootAsync();
        for (var i = 0; i < 4; i++)
        {
            var restarted = Make(); // the agent restarted (killed, OOM, upgraded) before logind rebooted
            _time.Advance(TimeSpan.FromMinutes(5));
            await TickAsync(restarted);
        }

        Assert.Equal(["reboot"], _machine.Done);
        Assert.Contains("ladder-stalled", Kinds());
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable); // stays cordoned for an admin, never a second reboot
    }

    [Fact]
    public async Task AFailedRebootCall_IsNotRepeated_TheHardResetRunsOnceAfterTheTimeout()
    {
        _machine.Fails = "org.freedesktop.DBus.Error.AccessDenied: Permission denied";
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make(o => o.HardReset.Command = ["/usr/local/sbin/wmcs-force-reboot", Node]);
        await TickAsync(ladder);
        Assert.Equal(LadderAction.Reboot, await TickAsync(ladder));
        Assert.Contains("ladder-reboot-failed", Kinds());
        _time.Advance(TimeSpan.FromMinutes(15));
        await TickAsync(ladder); // -> hard-reset rung
        Assert.Equal(LadderAction.HardReset, await TickAsync(ladder));
        _time.Advance(TimeSpan.FromMinutes(16));
        await TickAsync(Make());
        await TickAsync(Make());
        Assert.Equal(["reboot", "hard-reset /usr/local/sbin/wmcs-force-reboot " + Node], _machine.Done);
    }

    [Fact]
    public async Task TheLeaseLost_BeforeTheReboot_NoReboot_UntilItIsHeldAgain()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make();
        await TickAsync(ladder);
        _gate.Refuse = "the coordinator's lease: lost (token 4 expired and was taken over)";
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Empty(_machine.Done);
        Assert.Single(Kinds(), k => k == "ladder-refused"); // said once, not per tick
        Assert.False(ladder.Current!.RebootAsked);
        Assert.Equal("the coordinator's lease: lost (token 4 expired and was taken over)", await ladder.RenewAsync(CancellationToken.None));

        _gate.Refuse = null;
        Assert.Equal(LadderAction.Reboot, await TickAsync(ladder));
        Assert.Equal(["reboot"], _machine.Done);
    }

    [Fact]
    public async Task TheLease_IsRenewedWhileTheIncidentIsOpen_NotBeforeNorAfter()
    {
        var ladder = Make(o => o.Triggers.StuckProcesses.Enabled = false);
        Assert.Null(await ladder.RenewAsync(CancellationToken.None));
        Assert.Empty(_gate.Asked); // no incident: nothing to renew

        // At its reboot rung, asked and waiting for logind: the service's renewal loop renews every RenewInterval.
        var incident = new Incident("stuck-processes-20261206T021500", "stuck-processes", null, Rung.Reboot, _time.GetUtcNow(), _time.GetUtcNow(), Boot1) { RebootAsked = true, Cordoned = true };
        incident.Save(_dir["state"]);
        _api.ChangeNode(Node, n => { n["spec"] = new System.Text.Json.Nodes.JsonObject { ["unschedulable"] = true }; n["metadata"]!["annotations"] = new System.Text.Json.Nodes.JsonObject { [CordonMark.Annotation] = new CordonMark(CordonMark.Us, incident.Id, "cordon", false, _time.GetUtcNow()).ToJson() }; });
        var running = Make(o => o.Triggers.StuckProcesses.Enabled = false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (_time.TimerCreated.CurrentCount > 0)
        {
            await _time.TimerCreated.WaitAsync(cts.Token);
        }

        await running.StartAsync(cts.Token);
        try
        {
            // Both of its timers exist (the renewal's and the tick's) before the clock moves.
            await _time.TimerCreated.WaitAsync(cts.Token);
            await _time.TimerCreated.WaitAsync(cts.Token);
            for (var n = 1; n <= 3; n++)
            {
                _time.Advance(TimeSpan.FromSeconds(30));
                await Until(() => _gate.Asked.Count(s => s == "renew-reboot") >= n, cts.Token);
            }

            // After (review C5): an admin's cancel ends it at the next tick; from then nothing is renewed.
            _gate.Ended = incident.Id;
            _time.Advance(TimeSpan.FromSeconds(10));
            await Until(() => running.Current?.Ended is not null, cts.Token);
            var renewals = _gate.Asked.Count(s => s.StartsWith("renew-", StringComparison.Ordinal));
            for (var n = 0; n < 3; n++)
            {
                _time.Advance(TimeSpan.FromSeconds(30));
                Assert.Null(await running.RenewAsync(cts.Token)); // what the loop calls, called here to see it do nothing
            }

            Assert.Equal(renewals, _gate.Asked.Count(s => s.StartsWith("renew-", StringComparison.Ordinal)));
        }
        finally
        {
            await running.StopAsync(CancellationToken.None);
        }

        Assert.Empty(_machine.Done);
        Assert.InRange(_gate.Asked.Count(s => s == "renew-reboot"), 3, 4); // the tick's timer and the renewal's fire together at 30 s
    }

    [Fact]
    public async Task TheApiServerDown_MidRecovery_NothingEnds_AndTheHealthyCountStartsAgain()
    {
        await UpToTheRebootAsync();
        _machine.Boot = Boot2;
        StuckOnNfs(TimeSpan.Zero);
        var after = Make();
        await TickAsync(after);
        await TickAsync(after);
        _time.Advance(TimeSpan.FromMinutes(8));
        _api.Down = true;
        StuckOnNfs(TimeSpan.Zero);
        Assert.Equal(LadderAction.Wait, await TickAsync(after));
        Assert.Null(after.Current!.HealthySince);
        _api.Down = false;
        _time.Advance(TimeSpan.FromMinutes(5));
        StuckOnNfs(TimeSpan.Zero);
        Assert.Equal(LadderAction.Wait, await TickAsync(after)); // healthy again only from now
        _time.Advance(TimeSpan.FromMinutes(10));
        StuckOnNfs(TimeSpan.Zero);
        Assert.Equal(LadderAction.Uncordon, await TickAsync(after));
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
    }

    [Fact]
    public async Task AnAdminUncordon_BeforeTheReboot_EndsTheIncident_NoReboot_NeverCordonedAgain()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make();
        await TickAsync(ladder);
        _gate.Refuse = "Alertmanager: ToolforgeNfsDown is firing";
        await TickAsync(ladder); // the reboot waits on its gate
        _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = false);
        _gate.Refuse = null;

        Assert.Equal(LadderAction.End, await TickAsync(ladder));
        Assert.Empty(_machine.Done);
        Assert.Null(Mark()); // our mark removed, the admin's uncordon kept
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Contains("uncordoned", ladder.Current!.End, StringComparison.Ordinal);
        var writes = WriteLines().Count;
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(writes, WriteLines().Count);
    }

    [Fact]
    public async Task ACancelAtTheCoordinator_EndsTheIncident_AndLeavesTheNodeAsItIs()
    {
        var ladder = await UpToTheRebootAsync();
        var writes = WriteLines().Count;
        _gate.Ended = ladder.Current!.Id;
        Assert.Equal(LadderAction.End, await TickAsync(ladder));
        Assert.Equal(writes, WriteLines().Count);
        Assert.NotNull(Mark());
        Assert.Contains("coordinator", ladder.Current!.End, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHoldOnTheNode_OrPuppetDisabled_StartsNoIncident()
    {
        StuckOnNfs(TimeSpan.FromMinutes(12));
        _api.ChangeNode(Node, n => n["metadata"]!["labels"] = new System.Text.Json.Nodes.JsonObject { ["remediation.toolforge.org/hold"] = "T401234" });
        var ladder = Make();
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Null(ladder.Current);
        Assert.Equal(["ladder-held"], Kinds());

        _api.ChangeNode(Node, n => n["metadata"]!["labels"] = new System.Text.Json.Nodes.JsonObject());
        File.WriteAllText(_dir["agent_disabled.lock"], "{\"disabled_message\":\"reason not specified\"}");
        var puppet = Make(o => o.Holds.LockFiles = [_dir["agent_disabled.lock"]]);
        Assert.Equal(LadderAction.Wait, await TickAsync(puppet));
        Assert.Null(puppet.Current);
        Assert.Contains("puppet", _events.Last().Message, StringComparison.Ordinal);
        Assert.Empty(WriteLines());
    }

    [Fact]
    public async Task AHold_IsReportedAsTheCheckRemediationHold_WithNoIncident_LookedAtEveryRenewInterval()
    {
        // agentctl remediation status shows the holds the agents report: the check says which one, with nothing triggered.
        var ladder = Make(o => o.Holds.LockFiles = [_dir["agent_disabled.lock"]]);
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(CheckState.Ok, _state.GetCheck(LadderService.HoldCheck)!.State);

        File.WriteAllText(_dir["agent_disabled.lock"], "{\"disabled_message\":\"T401234: kernel upgrade\"}");
        await TickAsync(ladder);
        Assert.Equal(CheckState.Ok, _state.GetCheck(LadderService.HoldCheck)!.State); // not looked at again before RenewInterval
        _time.Advance(new LadderOptions().RenewInterval);
        await TickAsync(ladder);
        var puppet = _state.GetCheck(LadderService.HoldCheck)!;
        Assert.Equal(CheckState.Warning, puppet.State);
        Assert.Contains("agent_disabled.lock exists (puppet's agent is disabled", puppet.Message, StringComparison.Ordinal);

        File.Delete(_dir["agent_disabled.lock"]);
        _api.ChangeNode(Node, n => n["metadata"]!["annotations"] = new System.Text.Json.Nodes.JsonObject { ["remediation.toolforge.org/hold"] = "T401234" });
        _time.Advance(new LadderOptions().RenewInterval);
        await TickAsync(ladder);
        Assert.Equal("held: the Node has the annotation remediation.toolforge.org/hold: no incident starts, an open one's reboot, hard reset and uncordon wait", _state.GetCheck(LadderService.HoldCheck)!.Message);

        _api.ChangeNode(Node, n => n["metadata"]!["annotations"] = new System.Text.Json.Nodes.JsonObject());
        _time.Advance(new LadderOptions().RenewInterval);
        await TickAsync(ladder);
        Assert.Equal(CheckState.Ok, _state.GetCheck(LadderService.HoldCheck)!.State);

        // The API server unreachable: "cannot tell" (unknown), not a hold an admin put (a blip must not show the fleet held).
        _api.Down = true;
        _time.Advance(new LadderOptions().RenewInterval);
        await TickAsync(ladder);
        var unknown = _state.GetCheck(LadderService.HoldCheck)!;
        Assert.Equal(CheckState.Unknown, unknown.State);
        Assert.StartsWith("cannot tell: the Node cannot be read to look for a hold", unknown.Message, StringComparison.Ordinal);
        _api.Down = false;
        Assert.Empty(Kinds()); // a check, not an event: nothing triggered
        Assert.Empty(WriteLines());
    }

    [Fact]
    public async Task TheRuntimeFailing_IsRestartedOverDBus_AndHealthyAgain_EndsWithoutAWrite()
    {
        var cri = new CriOptions();
        _state.SetCheck(CriRuntimeCheck.RuntimeCheckName(cri), CheckState.Failing, "rpc error: code = Unavailable");
        _time.Advance(TimeSpan.FromMinutes(11));
        var ladder = Make();
        Assert.Equal(LadderAction.RestartUnit, await TickAsync(ladder));
        Assert.Equal(["restart containerd.service"], _machine.Done);
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        _state.SetCheck(CriRuntimeCheck.RuntimeCheckName(cri), CheckState.Ok, "containerd 1.6.20 answers");
        Assert.Equal(LadderAction.End, await TickAsync(ladder));
        Assert.Equal("containerd.service is healthy again after its restart", ladder.Current!.End);
        Assert.Empty(WriteLines());
        Assert.DoesNotContain(_gate.Asked, s => s.StartsWith("renew", StringComparison.Ordinal));
    }

    [Fact]
    public async Task KubeletStillFailingAfterTheGuardedRestart_OpensAtTheDrain_FromTheGuardedRestartsOwnRecord()
    {
        // The guarded restart (RemediationService) restarted kubelet 11 minutes ago, during this failure: its record says so.
        _state.SetCheck(KubeletCheck.Healthz, CheckState.Failing, "Get \"http://127.0.0.1:10248/healthz\": connection refused");
        _time.Advance(TimeSpan.FromMinutes(5));
        File.WriteAllText(_dir["state/node-agent.remediation-kubelet"], _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        _time.Advance(TimeSpan.FromMinutes(11));
        var ladder = Make(o => o.Triggers.Kubelet.Enabled = true);
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.Equal("kubelet", ladder.Current!.Trigger);
        Assert.Contains(_events, e => e.Kind == "ladder-opened" && e.Message.Contains("kubelet.service still unhealthy 11 min after the guarded restart", StringComparison.Ordinal));
        Assert.Empty(_machine.Done); // not restarted again by the ladder
    }

    [Fact]
    public async Task TheApiServerDown_WhenATriggerFires_StartsNoIncident_UntilTheNodeCanBeRead()
    {
        StuckOnNfs(TimeSpan.FromMinutes(12));
        _api.Down = true;
        var ladder = Make();
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Null(ladder.Current);
        Assert.Contains("the Node cannot be read to look for a hold", _events.Single().Message, StringComparison.Ordinal);
        _api.Down = false;
        StuckOnNfs(TimeSpan.FromMinutes(12));
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.NotNull(ladder.Current);
    }

    [Theory]
    [InlineData("{\"id\":\"stuck-proc")] // cut short
    [InlineData("{\"id\":null,\"trigger\":\"stuck-processes\",\"rung\":\"Reboot\",\"started\":\"2026-12-06T02:15:00+00:00\",\"rungStarted\":\"2026-12-06T02:15:00+00:00\",\"bootId\":\"b\",\"rebootAsked\":true}")]
    public async Task AnIncidentRecordThatCannotBeRead_OpensNothing_UntilAnAdminRemovesIt(string record)
    {
        // Review A3: it may be an open incident (cordoned, its reboot asked): read as none, a trigger opened a new one at
        // once and rebooted again. Now it holds, said once, until the file is gone.
        File.WriteAllText(Incident.PathIn(_dir["state"]), record);
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
            _time.Advance(TimeSpan.FromHours(2));
            StuckOnNfs(TimeSpan.FromMinutes(12));
        }

        Assert.Null(ladder.Current);
        Assert.Equal(["ladder-record-unreadable"], Kinds());
        Assert.Empty(WriteLines());
        Assert.Empty(_machine.Done);
        Assert.Null(await ladder.RenewAsync(CancellationToken.None));
        Assert.Empty(_gate.Asked);

        File.Delete(Incident.PathIn(_dir["state"]));
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.NotNull(ladder.Current);
    }

    [Fact]
    public async Task AHoldPutOnAnOpenIncident_StopsItsReboot_SaidOnce_StalledAfterTheRebootTimeout_ThenTheRebootWhenLifted()
    {
        // Review A2: the hold was looked at only when an incident opened; an admin's hold label did not stop the reboot.
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make();
        Assert.Equal(LadderAction.Drain, await TickAsync(ladder));
        Assert.Equal(Rung.Reboot, ladder.Current!.Rung);
        _api.ChangeNode(Node, n => n["metadata"]!["labels"] = new System.Text.Json.Nodes.JsonObject { ["remediation.toolforge.org/hold"] = "T401234" });
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Empty(_machine.Done);
        Assert.False(ladder.Current!.RebootAsked);
        Assert.Single(Kinds(), k => k == "ladder-held");
        Assert.DoesNotContain("ladder-stalled", Kinds());

        _time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal("held", ladder.Current!.Stalled);
        Assert.Single(Kinds(), k => k == "ladder-stalled");
        Assert.Empty(_machine.Done);

        _api.ChangeNode(Node, n => n["metadata"]!["labels"] = new System.Text.Json.Nodes.JsonObject());
        Assert.Equal(LadderAction.Reboot, await TickAsync(ladder));
        Assert.Equal(["reboot"], _machine.Done);
        Assert.Null(ladder.Current!.Stalled);
    }

    [Fact]
    public async Task ARebootTheGateKeepsRefusing_IsStalledAfterTheRebootTimeout_SaidOnce()
    {
        // Review B3: a reboot refused for ever never stalled (no alert, the node cordoned, the place held).
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        StuckOnNfs(TimeSpan.FromMinutes(12));
        var ladder = Make();
        await TickAsync(ladder);
        _gate.Refuse = "Alertmanager: ToolforgeNfsDown is firing";
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Null(ladder.Current!.Stalled);
        _time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal("refused", ladder.Current!.Stalled);
        Assert.Single(Kinds(), k => k == "ladder-stalled");
        Assert.Empty(_machine.Done);
    }

    private Incident AtRecoverCordoned(DateTimeOffset? healthySince)
    {
        var incident = new Incident("stuck-processes-20261206T021500", "stuck-processes", null, Rung.Recover, _time.GetUtcNow(), _time.GetUtcNow(), Boot1) { Cordoned = true, RebootAsked = true, HealthySince = healthySince };
        incident.Save(_dir["state"]);
        _api.ChangeNode(Node, n => { n["spec"] = new System.Text.Json.Nodes.JsonObject { ["unschedulable"] = true }; n["metadata"]!["annotations"] = new System.Text.Json.Nodes.JsonObject { [CordonMark.Annotation] = new CordonMark(CordonMark.Us, incident.Id, "recover", false, _time.GetUtcNow()).ToJson() }; });
        return incident;
    }

    [Fact]
    public async Task AnAgentRestartedInRecover_CountsGreenAgainFromItsStart_NotTheSavedHealthySince()
    {
        // Review B7: HealthySince survived the restart: the agent's downtime counted as green, the uncordon came at once.
        AtRecoverCordoned(_time.GetUtcNow());
        _time.Advance(TimeSpan.FromMinutes(30));
        var ladder = Make();
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.Equal(_time.GetUtcNow(), ladder.Current!.HealthySince);
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(LadderAction.Uncordon, await TickAsync(ladder));
    }

    [Fact]
    public async Task ARecoverCheckNeverReported_OrMistyped_IsNotGreen()
    {
        // Review B9: Recover:Checks names were not checked; one never reported (a typo) read as green for ever.
        AtRecoverCordoned(null);
        var ladder = Make(o => o.Recover.Checks = ["node.nfs-mountz"]);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
            _time.Advance(TimeSpan.FromMinutes(11));
        }

        Assert.Null(ladder.Current!.HealthySince);
        _state.SetCheck("node.nfs-mountz", CheckState.Ok, "mounted");
        Assert.Equal(LadderAction.Wait, await TickAsync(ladder));
        Assert.NotNull(ladder.Current!.HealthySince);
    }

    [Fact]
    public async Task TicksFailingInARow_AreCountedAndStallTheIncident_SaidOnce_UntilOnePasses()
    {
        // Review B6: a tick failing for ever left a live daemon doing nothing, said as type and message only.
        AtRecoverCordoned(null);
        _machine.BootFails = new InvalidOperationException("boot_id: unexpected");
        var ladder = Make();
        for (var i = 0; i < LadderService.FailedTicksStalled + 2; i++)
        {
            await ladder.GuardedTickAsync(CancellationToken.None);
        }

        Assert.True(ladder.FailingTicks);
        Assert.Single(Kinds(), k => k == "ladder-stalled");
        _machine.BootFails = null;
        await ladder.GuardedTickAsync(CancellationToken.None);
        Assert.False(ladder.FailingTicks);
    }

    [Fact]
    public async Task TheRenewalLoopFailing_EndsTheLadder_SoTheHostStops_NeverALiveLadderThatDoesNotRenew()
    {
        // Review B6: the renewal loop's failure was awaited with SuppressThrowing, only at the stop.
        var incident = AtRecoverCordoned(null);
        var running = Make(o => o.Triggers.StuckProcesses.Enabled = false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (_time.TimerCreated.CurrentCount > 0)
        {
            await _time.TimerCreated.WaitAsync(cts.Token);
        }

        await running.StartAsync(cts.Token);
        await _time.TimerCreated.WaitAsync(cts.Token);
        await _time.TimerCreated.WaitAsync(cts.Token);
        _gate.RenewThrows = new OutOfMemoryException("the renewal's own failure"); // the one exception RenewAsync lets through
        for (var n = 0; n < 12 && !running.ExecuteTask!.IsCompleted; n++)
        {
            // At most 2 minutes: well before Recover:HealthyFor, so nothing but the renewal's failure can end it.
            _time.Advance(TimeSpan.FromSeconds(10));
            await Task.WhenAny(running.ExecuteTask!, Task.Delay(200, cts.Token));
        }

        Assert.True(running.ExecuteTask!.IsCompleted, "the ladder runs on with its renewal loop dead");
        await Assert.ThrowsAsync<OutOfMemoryException>(() => running.ExecuteTask);
        Assert.Equal(incident.Id, running.Current!.Id);
        await running.StopAsync(CancellationToken.None);
    }

    private static async Task Until(Func<bool> condition, CancellationToken ct)
    {
        while (!condition())
        {
            await Task.Delay(10, ct);
        }
    }
}
