using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using k8s.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Hosting;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The drain against the fake API server (tests/TestSupport/FakeKubeApiServer: pods, budgets and evictions as
/// kube-apiserver has them). Time is a fake clock the test moves only when the drainer waits (a positive signal: it
/// created its poll timer), so a 10-minute timeout takes milliseconds and nothing sleeps.
/// </summary>
public sealed partial class DrainTests : IAsyncLifetime
{
    private const string Node = "tools-k8s-worker-nfs-3";
    private const string Incident = "inc-20261206-0215";
    private readonly TempDir _dir = new();
    private readonly ConcurrentQueue<AgentEvent> _events = new();
    private FakeKubeApiServer _api = null!;
    private KubeClient? _client;

    /// <summary>Stand-in for what node.stuck-processes sees, where the test is about the drain's decisions; the real path (a process in D on a fuse.sshfs mount) has its own test below.</summary>
    private sealed class StuckSeen : IStuckPods
    {
        public HashSet<string> Uids { get; } = new(StringComparer.Ordinal);

        public IReadOnlySet<string> OnNetworkMounts() => Uids;
    }

    public async Task InitializeAsync()
    {
        _api = await FakeKubeApiServer.StartAsync();
        _api.Put(FakeKubeApiServer.Node(Node));
        Directory.CreateDirectory(_dir["state"]);
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

    private readonly List<KubeClient> _clients = [];

    /// <summary>A gate that lets the first <see cref="Allowed"/> steps act and refuses the rest (as an expired lease would).</summary>
    private sealed class CountingGate(int allowed) : IRemediationGate
    {
        public List<string> Asked { get; } = [];

        public int Allowed { get; } = allowed;

        public ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct)
        {
            Asked.Add(step);
            return ValueTask.FromResult(Asked.Count > Allowed ? "the lease expired" : null);
        }
    }

    private (Drainer Drainer, SteppedTime Time, AgentState State) Make(IStuckPods? stuck = null, Action<DrainOptions>? edit = null, SteppedTime? time = null, FakeKubeApiServer? api = null, IRemediationGate? gate = null, ClusterView? view = null)
    {
        api ??= _api;
        time ??= new SteppedTime(DateTimeOffset.UtcNow);
        var drain = new DrainOptions { Enabled = true, Timeout = TimeSpan.FromMinutes(1), PollInterval = TimeSpan.FromSeconds(5), StuckAfter = TimeSpan.FromMinutes(1), PageSize = 2 };
        edit?.Invoke(drain);
        var kubernetes = new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(_dir[$"kubeconfig-{api.Port}"]) };
        var client = new KubeClient(Support.Options(kubernetes));
        _clients.Add(client);
        _client ??= client;
        var state = Support.State(time);
        state.EventAdded += _events.Enqueue;
        var drainer = new Drainer(
            Support.Options(new RemediationOptions { Drain = drain }),
            Support.Options(new NodeOptions { NodeName = Node, StateDirectory = _dir["state"] }),
            client,
            view ?? new ClusterView(kubernetes, Node, NullLogger<ClusterView>.Instance),
            state,
            stuck ?? new StuckSeen(),
            gate ?? new OpenGate(),
            time,
            NullLogger<Drainer>.Instance);
        return (drainer, time, state);
    }

    // Runs the drain, moving the clock by one poll each time the drainer waits.
    private static async Task<DrainOutcome> RunAsync(Drainer drainer, SteppedTime time, TimeSpan poll, string incident = Incident)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = drainer.DrainAsync(incident, cts.Token);
        while (true)
        {
            var tick = time.TimerCreated.WaitAsync(cts.Token);
            if (await Task.WhenAny(run, tick) == run)
            {
                return await run;
            }

            time.Advance(poll);
        }
    }

    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(5);

    private static Dictionary<string, string> App(string app) => new() { ["app"] = app };

    private CordonMark? Mark() => CordonMark.Read(_api.GetNode(Node)!.Metadata.Annotations?.ToDictionary());

    private List<string> Kinds() => _events.Select(e => e.Kind).ToList();

    private List<string> WriteLines() => _api.Writes.Where(w => !w.Target.StartsWith("events/", StringComparison.Ordinal)).Select(w => $"{w.Verb} {w.Target} {w.Code}").ToList();

    [Fact]
    public async Task ADrain_CordonsWithOurMark_EvictsWhatTheAdminPagesKubectlDrainForceWould_AndUncordonsWhatItCordoned()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node));
        _api.Put(FakeKubeApiServer.Pod("tool-c", "job-done", Node, phase: "Succeeded"));
        _api.Put(FakeKubeApiServer.Pod("kube-system", "calico-node-x2x", Node, ownerKind: "DaemonSet"));
        _api.Put(FakeKubeApiServer.Pod("kube-system", "kube-proxy-" + Node, Node, mirror: true));
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-1", "tools-k8s-worker-nfs-4", App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: 1, currentHealthy: 3));
        var (drainer, time, _) = Make();

        var outcome = await RunAsync(drainer, time, Poll);

        Assert.Equal(DrainEnd.Drained, outcome.End);
        Assert.Equal(["PATCH nodes/" + Node + " 200", "POST pods/tool-a/web-0/eviction 201", "POST pods/tool-b/cron-1/eviction 201"], WriteLines());
        Assert.Contains("\"resourceVersion\"", _api.Writes[0].Detail, StringComparison.Ordinal); // the cordon carried its precondition
        Assert.NotNull(_api.GetPod("kube-system", "calico-node-x2x"));
        Assert.NotNull(_api.GetPod("kube-system", "kube-proxy-" + Node));
        Assert.NotNull(_api.GetPod("tool-c", "job-done"));
        Assert.NotNull(_api.GetPod("tool-a", "web-1"));
        Assert.Equal(0, _api.GetBudget("tool-a", "web")!.Status.DisruptionsAllowed);
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        var mark = Mark();
        Assert.NotNull(mark);
        Assert.Equal((CordonMark.Us, Incident, false), (mark!.By, mark.Incident, mark.UnschedulableBefore));
        Assert.Equal("drained", DrainRecord.Load(_dir["state"])!.Step);

        Assert.Equal(UncordonDecision.Uncordon, await drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Null(Mark());
        Assert.Null(DrainRecord.Load(_dir["state"]));
        Assert.Equal(["drain-cordoned", "drain-done", "drain-uncordoned"], Kinds());
    }

    [Fact]
    public async Task EachStep_IsANodeEvent()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        var (drainer, time, state) = Make();
        var kubernetes = new KubernetesOptions { Kubeconfig = _dir[$"kubeconfig-{_api.Port}"] };
        using var recorder = new NodeEventRecorder(Support.Options(new NodeConditionsOptions { Enabled = true }), _client!, new ClusterView(kubernetes, Node, NullLogger<ClusterView>.Instance), state, time, NullLogger<NodeEventRecorder>.Instance);

        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll)).End);
        await drainer.UncordonAsync(Incident, CancellationToken.None);
        await recorder.FlushAsync(CancellationToken.None);

        var events = _api.Events.OrderBy(e => e.Reason, StringComparer.Ordinal).ToList();
        Assert.Equal(["DrainCordoned", "DrainDone", "DrainUncordoned"], events.Select(e => e.Reason));
        Assert.Equal(["Warning", "Normal", "Normal"], events.Select(e => e.Type));
        Assert.All(events, e => Assert.Equal(("Node", Node), (e.InvolvedObject.Kind, e.InvolvedObject.Name)));
        Assert.Equal($"{Node} cordoned for incident {Incident}", events[0].Message);
    }

    [Fact]
    public async Task APodABudgetProtects_IsWaitedForAndReported_NeverForced()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2));
        var (drainer, time, _) = Make();

        var outcome = await RunAsync(drainer, time, Poll);

        Assert.Equal(DrainEnd.Blocked, outcome.End);
        var held = Assert.Single(outcome.Pods);
        Assert.Equal(("tool-a/web-0", Hold.Budget, "The disruption budget web needs 2 healthy pods and has 2 currently"), (held.Id, held.Hold, held.Detail));
        Assert.NotNull(_api.GetPod("tool-a", "web-0"));
        Assert.DoesNotContain(_api.Writes, w => w.Verb == "DELETE");
        // Retried every poll for the whole timeout (1 min / 5 s, + the first round), every retry refused.
        Assert.Equal(13, _api.Writes.Count(w => w.Target == "pods/tool-a/web-0/eviction" && w.Code == 429));
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        Assert.NotNull(Mark());
        Assert.Equal(["drain-cordoned", "drain-waiting", "drain-blocked"], Kinds());
        Assert.Contains("blocked by a PodDisruptionBudget (tool-a/web-0: The disruption budget web needs 2 healthy pods and has 2 currently)", _events.Last().Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APodSeveralBudgetsSelect_IsReportedAsSuch_AndNotForced()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" }));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "by-app", App("web"), disruptionsAllowed: 1));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "by-tier", new Dictionary<string, string> { ["tier"] = "front" }, disruptionsAllowed: 1));
        var (drainer, time, _) = Make();

        var outcome = await RunAsync(drainer, time, Poll);

        Assert.Equal(DrainEnd.Blocked, outcome.End);
        Assert.Equal(Hold.Budgets, Assert.Single(outcome.Pods).Hold);
        Assert.Contains("1 selected by more than one PodDisruptionBudget (tool-a/web-0)", outcome.Message, StringComparison.Ordinal);
        Assert.All(_api.Writes.Where(w => w.Target.EndsWith("/eviction", StringComparison.Ordinal)), w => Assert.Equal(500, w.Code));
        Assert.NotNull(_api.GetPod("tool-a", "web-0"));
        Assert.Equal(1, _api.GetBudget("tool-a", "by-app")!.Status.DisruptionsAllowed);
    }

    [Fact]
    public async Task ACordonRefusedWith409_ReadsTheNodeAgainAndRetries_Bounded()
    {
        _api.InterleaveNodeWrites(2);
        var (drainer, time, _) = Make();
        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll)).End);
        Assert.Equal(["PATCH nodes/" + Node + " 409", "PATCH nodes/" + Node + " 409", "PATCH nodes/" + Node + " 200"], WriteLines());
        Assert.Contains("Operation cannot be fulfilled on nodes", _api.Writes[0].Detail, StringComparison.Ordinal);
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);

        // A Node that changes before every patch: given up after 1 + ConflictRetries tries, nothing changed.
        await using var other = await FakeKubeApiServer.StartAsync();
        other.Put(FakeKubeApiServer.Node(Node));
        other.InterleaveNodeWrites(100);
        var (again, time2, _) = Make(edit: d => d.ConflictRetries = 3, api: other);
        var outcome = await RunAsync(again, time2, Poll, "inc-2");
        Assert.Equal(DrainEnd.Failed, outcome.End);
        Assert.Contains("409 Conflict 4 times", outcome.Message, StringComparison.Ordinal);
        Assert.Equal(4, other.Writes.Count(w => w.Code == 409));
        Assert.DoesNotContain(other.Writes, w => w.Code != 409 && !w.Target.StartsWith("events/", StringComparison.Ordinal));
        Assert.NotEqual(true, other.GetNode(Node)!.Spec.Unschedulable);
    }

    [Fact]
    public async Task APodStuckTerminating_WithProcessesInDOnANetworkMount_IsAStuckVerdict_AndWithoutThatEvidenceOnlySlow()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "nfs-reader", Node, grace: 30));
        _api.StayTerminating("tool-a", "nfs-reader");
        var stuck = new StuckSeen();
        stuck.Uids.Add(_api.GetPod("tool-a", "nfs-reader")!.Metadata.Uid);
        var (drainer, time, _) = Make(stuck, d => d.Timeout = TimeSpan.FromMinutes(10));
        var started = time.GetUtcNow();

        var outcome = await RunAsync(drainer, time, Poll);

        Assert.Equal(DrainEnd.Stuck, outcome.End);
        var pod = Assert.Single(outcome.Pods);
        Assert.Equal(Hold.Terminating, pod.Hold);
        // Not before its deadline (30 s) + StuckAfter (1 min), and long before the drain's timeout.
        Assert.InRange(time.GetUtcNow() - started, TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(100));
        Assert.Equal(["drain-cordoned", "drain-waiting", "drain-stuck"], Kinds());
        Assert.Equal("stuck", DrainRecord.Load(_dir["state"])!.Step);

        // The same pod with no process of it in D on a network mount: only slow, the timeout decides.
        _api.Put(FakeKubeApiServer.Pod("tool-a", "slow", Node, grace: 30));
        _api.StayTerminating("tool-a", "slow");
        _api.FinishTermination("tool-a", "nfs-reader");
        var (slowDrainer, slowTime, _) = Make();
        var slow = await RunAsync(slowDrainer, slowTime, Poll, "inc-slow");
        Assert.Equal(DrainEnd.Slow, slow.End);
        Assert.Contains("1 terminating (tool-a/slow)", slow.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAdminsUncordonDuringTheDrain_EndsTheIncident_AndIsNeverUndone()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node, App("cron")));
        _api.Put(FakeKubeApiServer.Budget("tool-b", "cron", App("cron"), disruptionsAllowed: 0));
        // kubectl uncordon as soon as the first eviction went through.
        _api.Written += w =>
        {
            if (w.Target == "pods/tool-a/web-0/eviction")
            {
                _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = false);
            }
        };
        var (drainer, time, _) = Make();

        var outcome = await RunAsync(drainer, time, Poll);

        Assert.Equal(DrainEnd.Cancelled, outcome.End);
        Assert.Contains("uncordoned by someone else", outcome.Message, StringComparison.Ordinal);
        // One round of evictions, then nothing but the removal of our mark.
        Assert.Equal(["PATCH nodes/" + Node + " 200", "POST pods/tool-a/web-0/eviction 201", "POST pods/tool-b/cron-1/eviction 429", "PATCH nodes/" + Node + " 200"], WriteLines());
        Assert.Null(Mark());
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Equal(UncordonDecision.NotOurs, await drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.Equal(4, WriteLines().Count);
        Assert.Equal(["drain-cordoned", "drain-waiting", "drain-cancelled"], Kinds());
    }

    [Fact]
    public async Task AnAdminsUncordon_EndsTheDrainAtItsWatchEvent_NotAtThePollsEnd()
    {
        // A pod that never finishes terminating keeps the drain waiting; its poll is an hour on a clock that never moves:
        // only the Node's watch event (the agent's ClusterView, watching the API server) can wake it.
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.StayTerminating("tool-a", "web-0");
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig-watch"]) };
        using var view = new ClusterView(kubernetes, Node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(await Peer.EventuallyAsync(() => view.Synced, TimeSpan.FromSeconds(10)));
            var (drainer, time, _) = Make(edit: d => (d.PollInterval, d.Timeout) = (TimeSpan.FromHours(1), TimeSpan.FromHours(2)), view: view);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1)); // a hang's bound
            var start = time.GetUtcNow();
            var run = drainer.DrainAsync(Incident, cts.Token);
            await time.TimerCreated.WaitAsync(cts.Token); // evicted, now waiting on its poll
            Assert.False(run.IsCompleted);

            _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = false); // kubectl uncordon
            var outcome = await run;
            Assert.Equal(DrainEnd.Cancelled, outcome.End);
            Assert.Equal(start, time.GetUtcNow()); // the clock was never moved: the watch event woke it
            Assert.Contains("uncordoned by someone else", outcome.Message, StringComparison.Ordinal);
        }
        finally
        {
            await view.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task AnUncordonRacingAnAdmin_Sees409_ReadsAgain_AndLeavesTheAdminsChoice()
    {
        var (drainer, time, _) = Make();
        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll)).End);
        // The admin uncordons between our read and our patch: our patch (with the old resourceVersion) is refused.
        _api.InterleaveNodeWrites(1);
        _api.Written += w =>
        {
            if (w.Code == 409)
            {
                _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = false);
            }
        };
        Assert.Equal(UncordonDecision.AlreadyUncordoned, await drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.Null(Mark());
        var last = _api.Writes[^1];
        Assert.DoesNotContain("unschedulable", last.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMarkLeftByABlockedIncident_ThenAnAdminsUncordonAndMaintenanceCordon_AreNeverUndoneByTheNextIncident()
    {
        // Review finding: the next incident must not take the old mark's "schedulable before" for now.
        _api.Put(FakeKubeApiServer.Pod("tool-b", "web-1", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-b", "web", App("web"), disruptionsAllowed: 0));
        var (drainer, time, _) = Make();
        Assert.Equal(DrainEnd.Blocked, (await RunAsync(drainer, time, Poll, "inc-a")).End);
        Assert.False(Mark()!.UnschedulableBefore);
        // The admin takes over: kubectl uncordon (our mark stays), later kubectl cordon for maintenance.
        _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = false);
        _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = true);
        _api.Delete("pods", "tool-b", "web-1");
        var (d2, t2, _) = Make();
        Assert.Equal(DrainEnd.Drained, (await RunAsync(d2, t2, Poll, "inc-b")).End);
        Assert.Equal(UncordonDecision.LeaveCordoned, await d2.UncordonAsync("inc-b", CancellationToken.None));
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable); // the admin's maintenance cordon stays
    }

    [Fact]
    public async Task ANodeAlreadyCordonedByAnAdmin_IsDrained_ButNeverUncordonedByUs()
    {
        _api.Put(FakeKubeApiServer.Node(Node, unschedulable: true));
        var (drainer, time, _) = Make();
        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll)).End);
        Assert.True(Mark()!.UnschedulableBefore);

        // A second incident on the same node keeps what the node was before the first.
        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll, "inc-second")).End);
        Assert.Equal(("inc-second", true), (Mark()!.Incident, Mark()!.UnschedulableBefore));

        Assert.Equal(UncordonDecision.LeaveCordoned, await drainer.UncordonAsync("inc-second", CancellationToken.None));
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Null(Mark());
    }

    [Fact]
    public async Task TheApiServerDownMidDrain_IsReported_TheNodeStaysCordoned_AndTheDrainGoesOnWhenItIsBack()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node));
        _api.Written += w =>
        {
            if (w.Target == "pods/tool-a/web-0/eviction")
            {
                _api.Down = true;
            }
        };
        var (drainer, time, _) = Make();
        var downFor = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = drainer.DrainAsync(Incident, cts.Token);
        while (!run.IsCompleted)
        {
            var tick = time.TimerCreated.WaitAsync(cts.Token);
            if (await Task.WhenAny(run, tick) == run)
            {
                break;
            }

            if (_api.Down && ++downFor == 3)
            {
                _api.Down = false; // back after three polls
            }

            time.Advance(Poll);
        }

        var outcome = await run;
        Assert.Equal(DrainEnd.Drained, outcome.End);
        Assert.Equal(["drain-cordoned", "drain-api-failed", "drain-api-recovered", "drain-done"], Kinds());
        Assert.Contains("503", _events.ElementAt(1).Message, StringComparison.Ordinal);
        Assert.Null(_api.GetPod("tool-b", "cron-1"));

        // Down for good: the drain ends Failed at its timeout; the node stays cordoned with our mark, for a later uncordon.
        _api.Put(FakeKubeApiServer.Pod("tool-c", "web-9", Node));
        _api.Written += w =>
        {
            if (w.Target == "pods/tool-c/web-9/eviction")
            {
                _api.Down = true;
            }
        };
        var (again, time2, _) = Make();
        var failed = await RunAsync(again, time2, Poll, "inc-down");
        Assert.Equal(DrainEnd.Failed, failed.End);
        Assert.Contains("the API server cannot be used", failed.Message, StringComparison.Ordinal);
        _api.Down = false;
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Equal("inc-down", Mark()!.Incident);
    }

    [Fact]
    public async Task AnAgentRestartedMidDrain_ResumesTheIncident_WithItsFirstStartTime()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: 0));
        var (first, time, _) = Make();
        using (var cts = new CancellationTokenSource())
        {
            var run = first.DrainAsync(Incident, cts.Token);
            await time.TimerCreated.WaitAsync(); // the first round is done, the drainer waits
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        }

        var started = DrainRecord.Load(_dir["state"])!.Started;
        var cordons = _api.Writes.Count(w => w.Target == "nodes/" + Node);
        time.Advance(TimeSpan.FromSeconds(50));

        // A new agent (same host, same clock moved on 50 s): the resumed drain has 10 s of its 1-minute timeout left.
        var (second, _, _) = Make(time: time);
        var outcome = await RunAsync(second, time, Poll);
        Assert.Equal(DrainEnd.Blocked, outcome.End);
        Assert.Equal(started, DrainRecord.Load(_dir["state"])!.Started);
        Assert.Equal(cordons, _api.Writes.Count(w => w.Target == "nodes/" + Node)); // already cordoned for this incident: not again
        Assert.Equal(TimeSpan.FromSeconds(60), time.GetUtcNow() - started);
    }

    [Fact]
    public async Task ACordonWhileTheApiServerIsDown_FailsAndChangesNothing()
    {
        _api.Down = true;
        var (drainer, time, _) = Make();
        var outcome = await RunAsync(drainer, time, Poll);
        _api.Down = false;
        Assert.Equal(DrainEnd.Failed, outcome.End);
        Assert.Contains("503", outcome.Message, StringComparison.Ordinal);
        Assert.Empty(_api.Writes);
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Equal(["drain-failed"], Kinds());
    }

    [Fact]
    public async Task AnEvictionRefusedOtherwise_IsSlow_WithTheApiServersWords()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: -1));
        var (drainer, time, _) = Make();
        var outcome = await RunAsync(drainer, time, Poll);
        Assert.Equal(DrainEnd.Slow, outcome.End);
        var pod = Assert.Single(outcome.Pods);
        Assert.Equal((Hold.Refused, "poddisruptionbudgets.policy \"web\" is forbidden: pdb disruptions allowed is negative"), (pod.Hold, pod.Detail));
        Assert.NotNull(_api.GetPod("tool-a", "web-0"));
    }

    [Fact]
    public async Task WhatTheClusterSays_IsMadePrintableAndBounded_BeforeAnEventOrALog()
    {
        var name = "web\n<3>FORGED " + new string('x', 3000);
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", name, App("web"), disruptionsAllowed: 0));
        var (drainer, time, _) = Make();
        var outcome = await RunAsync(drainer, time, Poll);
        Assert.Equal(DrainEnd.Blocked, outcome.End);
        Assert.All(_events, e =>
        {
            Assert.DoesNotContain(e.Message, char.IsControl);
            Assert.InRange(e.Message.Length, 1, 1024);
        });
        Assert.Contains("web <3>FORGED xxx", _events.Last().Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUncordonWhileTheApiServerIsDown_Throws_KeepsOurMark_AndWorksOnceItIsBack()
    {
        var (drainer, time, _) = Make();
        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll)).End);
        _api.Down = true;
        var ex = await Assert.ThrowsAsync<Toolforge.Agents.NodeAgent.Kubernetes.Api.KubeApiException>(() => drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.Equal(503, ex.StatusCode);
        _api.Down = false;
        Assert.NotNull(Mark());
        Assert.True(_api.GetNode(Node)!.Spec.Unschedulable);
        Assert.Equal(UncordonDecision.Uncordon, await drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
    }

    [Fact]
    public async Task AnAdminsUncordon_WhoseMarkRemovalMeets409_LeavesTheMark_AndTheUncordonStepRemovesItLater()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node, App("cron")));
        _api.Put(FakeKubeApiServer.Budget("tool-b", "cron", App("cron"), disruptionsAllowed: 0));
        _api.Written += w =>
        {
            if (w.Target == "pods/tool-b/cron-1/eviction")
            {
                _api.ChangeNode(Node, n => n["spec"]!["unschedulable"] = false);
                _api.InterleaveNodeWrites(1); // the next Node patch (our mark's removal) meets a changed Node
            }
        };
        var (drainer, time, _) = Make();
        Assert.Equal(DrainEnd.Cancelled, (await RunAsync(drainer, time, Poll)).End);
        Assert.Equal(409, _api.Writes[^1].Code);
        Assert.NotNull(Mark());
        Assert.Equal(UncordonDecision.AlreadyUncordoned, await drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.Null(Mark());
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
    }

    [Fact]
    public async Task AnIncidentThatCannotBeRecorded_IsNotStarted()
    {
        Directory.CreateDirectory(DrainRecord.PathIn(_dir["state"])); // a directory where the record goes: DurableFile refuses it
        var (drainer, time, _) = Make();
        var outcome = await RunAsync(drainer, time, Poll);
        Assert.Equal(DrainEnd.Failed, outcome.End);
        Assert.Contains("cannot be recorded", outcome.Message, StringComparison.Ordinal);
        Assert.Empty(_api.Writes);
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
    }

    [Fact]
    public async Task AnUnreadableDrainRecord_StartsAFreshIncident()
    {
        File.WriteAllText(DrainRecord.PathIn(_dir["state"]), "{not json");
        var (drainer, time, _) = Make();
        var started = time.GetUtcNow();
        Assert.Equal(DrainEnd.Drained, (await RunAsync(drainer, time, Poll)).End);
        var record = DrainRecord.Load(_dir["state"])!;
        Assert.Equal((Incident, started), (record.Incident, record.Started));
        Assert.Contains(_events, e => e.Kind == "drain-record-unreadable" && e.Message.Contains("cannot be read", StringComparison.Ordinal)); // said, not swallowed
    }

    [Fact]
    public async Task AnAgentRestarted_AfterAnAdminUncordonedMeanwhile_EndsTheIncident_AndNeverCordonsAgain()
    {
        foreach (var stepAtRestart in new[] { "cordon", "evict" })
        {
            // The cordon landed (our mark is on the Node); the agent stopped (its record at stepAtRestart); an admin uncordoned.
            var mark = CordonMark.ForCordon(null, Incident, unschedulable: false, DateTimeOffset.UtcNow);
            _api.ChangeNode(Node, n =>
            {
                n["spec"]!["unschedulable"] = false;
                n["metadata"]!["annotations"] = new JsonObject { [CordonMark.Annotation] = mark.ToJson() };
            });
            new DrainRecord(Incident, stepAtRestart, DateTimeOffset.UtcNow).Save(_dir["state"]);
            var before = _api.Writes.Count;
            var (drainer, time, _) = Make();

            var outcome = await RunAsync(drainer, time, Poll);

            Assert.Equal(DrainEnd.Cancelled, outcome.End);
            var writes = _api.Writes.Skip(before).Where(w => !w.Target.StartsWith("events/", StringComparison.Ordinal)).ToList();
            var only = Assert.Single(writes); // the removal of our mark, nothing else
            Assert.DoesNotContain("unschedulable", only.Detail, StringComparison.Ordinal);
            Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);
            Assert.Null(Mark());
            Assert.Null(DrainRecord.Load(_dir["state"]));
        }

        // Resumed past the cordon with our mark removed by someone: ended too, the node not touched.
        new DrainRecord(Incident, "evict", DateTimeOffset.UtcNow).Save(_dir["state"]);
        var count = _api.Writes.Count;
        var (again, time2, _) = Make();
        Assert.Equal(DrainEnd.Cancelled, (await RunAsync(again, time2, Poll)).End);
        Assert.Equal(count, _api.Writes.Count(w => !w.Target.StartsWith("events/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task EveryWrite_AsksTheGateFirst_AndARefusalStopsTheDrainBeforeIt()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node));
        _api.Put(FakeKubeApiServer.Pod("tool-c", "job-2", Node));
        var gate = new CountingGate(allowed: 2); // the cordon and one eviction, then the lease is gone
        var (drainer, time, _) = Make(gate: gate);

        var outcome = await RunAsync(drainer, time, Poll);

        Assert.Equal(DrainEnd.Refused, outcome.End);
        Assert.Equal(["cordon", "evict", "evict"], gate.Asked);
        Assert.Equal(["PATCH nodes/" + Node + " 200", "POST pods/tool-a/web-0/eviction 201"], WriteLines());
        Assert.Equal(["drain-cordoned", "drain-refused"], Kinds());
        Assert.Contains("the lease expired", outcome.Message, StringComparison.Ordinal);

        // The uncordon asks too: refused, nothing written, our mark kept for whoever holds the lease next.
        await Assert.ThrowsAsync<RemediationRefusedException>(() => drainer.UncordonAsync(Incident, CancellationToken.None));
        Assert.Equal(2, WriteLines().Count);
        Assert.NotNull(Mark());

        // Refused at the cordon: nothing written at all.
        var (refusedAtOnce, time2, _) = Make(gate: new CountingGate(allowed: 0));
        Assert.Equal(DrainEnd.Refused, (await RunAsync(refusedAtOnce, time2, Poll, "inc-other")).End);
        Assert.Equal(2, WriteLines().Count);
    }

    /// <summary>A gate whose incident an admin ended at the coordinator after <see cref="Allowed"/> steps.</summary>
    private sealed class EndingGate(int allowed) : IRemediationGate
    {
        public int Asked { get; private set; }

        public int Allowed { get; } = allowed;

        public ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct) =>
            ValueTask.FromResult(++Asked > Allowed ? "incident cancelled by admin1.example" : null);

        public bool HasEnded(string incident) => Asked > Allowed;
    }

    [Fact]
    public async Task AnIncidentEndedByAnAdmin_StopsAsCancelled_ForgetsItsRecord_AndIsNotResumed()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node));
        _api.Put(FakeKubeApiServer.Pod("tool-b", "cron-1", Node));
        var gate = new EndingGate(allowed: 1); // the cordon, then the admin's cancel
        var (drainer, time, _) = Make(gate: gate);

        var outcome = await RunAsync(drainer, time, Poll);
        Assert.Equal(DrainEnd.Cancelled, outcome.End);
        Assert.Contains("was ended by an admin", outcome.Message, StringComparison.Ordinal);
        Assert.Null(DrainRecord.Load(_dir["state"]));
        Assert.Equal(["PATCH nodes/" + Node + " 200"], WriteLines()); // the cordon only; the node left as it is
        Assert.NotNull(Mark());

        // Started again for the same incident (the agent restarted): ended at once, nothing written.
        var (again, time2, _) = Make(gate: gate);
        Assert.Equal(DrainEnd.Cancelled, (await RunAsync(again, time2, Poll)).End);
        Assert.Single(WriteLines());
    }

    [Fact]
    public async Task Disabled_DoesNothing()
    {
        var (drainer, _, _) = Make(edit: d => d.Enabled = false);
        Assert.Equal(DrainEnd.Disabled, (await drainer.DrainAsync(Incident, CancellationToken.None)).End);
        Assert.Empty(_api.Writes);
    }

    [Fact]
    public async Task MorePodsThanMaxPods_IsNotDrained_AndListedPageByPage()
    {
        for (var i = 0; i < 5; i++)
        {
            _api.Put(FakeKubeApiServer.Pod("tool-a", $"p-{i}", Node));
        }

        var lists = _api.ListRequests;
        var (drainer, time, _) = Make(edit: d => d.MaxPods = 3);
        var outcome = await RunAsync(drainer, time, Poll);
        Assert.Equal(DrainEnd.Failed, outcome.End);
        Assert.Contains("more than 3 pods", outcome.Message, StringComparison.Ordinal);
        Assert.Equal(2, _api.ListRequests - lists); // pages of 2: stopped at the second page (4 > 3), never read the third
        Assert.DoesNotContain(_api.Writes, w => w.Target.EndsWith("/eviction", StringComparison.Ordinal));
    }

    [Fact]
    public void TheDaemonsWiring_BindsTheDrainKeys_ResolvesTheDrainer_AndNamesABadValue()
    {
        IHostLike Build(string drain)
        {
            var path = _dir["node-agent-" + Guid.NewGuid().ToString("N")[..6] + ".json"];
            File.WriteAllText(path, $$$"""{"NodeAgent": {"NodeName": "{{{Node}}}", "StateDirectory": "{{{_dir["state"]}}}", "Remediation": {"Drain": {{{drain}}} } } }""");
            var builder = AgentDaemon.CreateBuilder(DaemonInfo.NodeAgent, path, NodeAgentHost.DefaultMetricsPort);
            NodeAgentHost.Configure(builder);
            return new IHostLike(builder.Build());
        }

        using (var ok = Build("""{"Enabled": true, "Timeout": "00:20:00", "GracePeriodSeconds": 30, "StuckAfter": "00:05:00"}"""))
        {
            Assert.DoesNotContain(BoundConfig.Problems(ok.Host.Services), p => p.Contains("Drain", StringComparison.Ordinal));
            var o = ok.Host.Services.GetRequiredService<IOptions<RemediationOptions>>().Value.Drain;
            Assert.Equal((true, TimeSpan.FromMinutes(20), 30, TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(5)), (o.Enabled, o.Timeout, o.GracePeriodSeconds, o.StuckAfter, o.PollInterval));
            Assert.Equal(Node, ok.Host.Services.GetRequiredService<Drainer>().NodeName);
            Assert.IsType<ProcStuckPods>(ok.Host.Services.GetRequiredService<IStuckPods>());
        }

        using var bad = Build("""{"GracePeriodSeconds": -5, "Timout": "00:01:00"}""");
        var problems = BoundConfig.Problems(bad.Host.Services);
        Assert.Contains(problems, p => p.Contains("NodeAgent:Remediation:Drain:GracePeriodSeconds", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Timout", StringComparison.Ordinal));
    }

    private sealed record IHostLike(Microsoft.Extensions.Hosting.IHost Host) : IDisposable
    {
        public void Dispose() => Host.Dispose();
    }
}
