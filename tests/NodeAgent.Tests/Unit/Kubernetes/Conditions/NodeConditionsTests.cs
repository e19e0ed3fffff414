using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The agent's problems as conditions on its own Node and as Events, against the fake API server (strategic merge of conditions by type, as the API server applies it).</summary>
public sealed class NodeConditionsTests : IAsyncLifetime
{
    private const string NodeName = "tools-k8s-worker-cond";
    private readonly TempDir _dir = new();
    private FakeKubeApiServer _api = null!;

    public async Task InitializeAsync()
    {
        _api = await FakeKubeApiServer.StartAsync();
        var node = FakeKubeApiServer.Node(NodeName);
        node.Status.Conditions.Add(new V1NodeCondition { Type = "NTPProblem", Status = "False", Reason = "NTPIsUp", Message = "written by node-problem-detector", LastHeartbeatTime = new DateTime(2026, 11, 30, 8, 0, 0, DateTimeKind.Utc), LastTransitionTime = new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc) });
        _api.Put(node);
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        _dir.Dispose();
    }

    private (NodeConditionWriter Writer, KubeClient Client) Writer(AgentState state, TimeProvider time, Action<NodeConditionsOptions>? edit = null)
    {
        var node = Support.Options(new NodeOptions { NodeName = NodeName, StateDirectory = _dir["state"] });
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig"]) };
        var conditions = new NodeConditionsOptions { Enabled = true };
        edit?.Invoke(conditions);
        Directory.CreateDirectory(_dir["state"]);
        var client = new KubeClient(Support.Options(kubernetes));
        var view = new ClusterView(kubernetes, NodeName, NullLogger<ClusterView>.Instance);
        return (new NodeConditionWriter(Support.Options(conditions), node, client, view, state, time, NullLogger<NodeConditionWriter>.Instance), client);
    }

    private V1NodeCondition? Condition(string type) => _api.GetNode(NodeName)!.Status.Conditions.SingleOrDefault(c => c.Type == type);

    [Fact]
    public async Task StartedWhileHealthzIsRefused_WritesOnlyTrue_AndARestartWritesNothingNewAndKeepsTheTransitionTime()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));

        // As the daemon starts: every check says it will answer; the unit check answers first, healthz a moment later.
        async Task<int> StartAgentAsync()
        {
            var state = Support.State(time);
            state.Expect(["kubelet.unit", "kubelet.healthz", "journal.pleg-unhealthy"]);
            var (writer, client) = Writer(state, time);
            using var _ = client;
            var before = _api.StatusPatches.Count;
            state.SetCheck("kubelet.unit", CheckState.Ok, "active (running)");
            state.SetCheck("journal.pleg-unhealthy", CheckState.Ok, "no match");
            await writer.SyncOnceAsync(CancellationToken.None);
            Assert.Equal(before, _api.StatusPatches.Count); // no verdict from the one source that answered
            time.Advance(TimeSpan.FromSeconds(10));
            state.SetCheck("kubelet.healthz", CheckState.Failing, "GET http://127.0.0.1:10248/healthz: connection refused");
            await writer.SyncOnceAsync(CancellationToken.None);
            return before;
        }

        await StartAgentAsync();
        var first = Condition("KubeletUnhealthy")!;
        Assert.Equal("True", first.Status);
        var written = _api.StatusPatches.Where(p => p.Body.Contains("\"KubeletUnhealthy\"", StringComparison.Ordinal)).ToList();
        Assert.Single(written);
        Assert.DoesNotContain("\"False\"", written[0].Body, StringComparison.Ordinal);

        // Restarted a minute later on the same broken node: nothing new is written, the transition time stays.
        time.Advance(TimeSpan.FromMinutes(1));
        var before = await StartAgentAsync();
        Assert.DoesNotContain(_api.StatusPatches.Skip(before), p => p.Body.Contains("\"KubeletUnhealthy\"", StringComparison.Ordinal));
        Assert.Equal(first.LastTransitionTime, Condition("KubeletUnhealthy")!.LastTransitionTime);
        Assert.Equal("True", Condition("KubeletUnhealthy")!.Status);
    }

    [Fact]
    public async Task ASourceThatNeverAnswers_HoldsAHealthyVerdictBackOnlyForTheStartGrace()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        state.Expect(["kubelet.unit", "kubelet.healthz"]);
        var (writer, client) = Writer(state, time);
        using var _ = client;
        state.SetCheck("kubelet.unit", CheckState.Ok, "active (running)");
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Null(Condition("KubeletUnhealthy"));
        time.Advance(NodeConditionWriter.StartGrace);
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Equal("False", Condition("KubeletUnhealthy")!.Status);
    }

    [Fact]
    public async Task FailingRecoveringAndHeartbeats_MoveOnlyWhatTheyShould_AndNeverTouchAnotherWritersConditions()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        var (writer, client) = Writer(state, time);
        using var _ = client;
        var ready = Condition("Ready")!;
        var ntp = Condition("NTPProblem")!;

        // Nothing has run yet: nothing is written.
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Empty(_api.StatusPatches);

        state.SetCheck("kubelet.unit", CheckState.Ok, "active (running)");
        state.SetCheck("kubelet.healthz", CheckState.Failing, "GET http://127.0.0.1:10248/healthz: connection refused");
        await writer.SyncOnceAsync(CancellationToken.None);
        var failing = Condition("KubeletUnhealthy")!;
        Assert.Equal("True", failing.Status);
        Assert.Equal("KubeletHealthzFailing", failing.Reason);
        Assert.Contains("connection refused", failing.Message, StringComparison.Ordinal);
        Assert.Equal(time.GetUtcNow().UtcDateTime, failing.LastTransitionTime);
        Assert.All(_api.StatusPatches, p => Assert.StartsWith("application/strategic-merge-patch+json", p.ContentType, StringComparison.Ordinal));
        Assert.All(_api.StatusPatches, p => Assert.DoesNotContain("\"Ready\"", p.Body, StringComparison.Ordinal));

        // Several sources on one condition: a second failing source does not flip it, the message names both.
        state.SetCheck("journal.pleg-unhealthy", CheckState.Failing, "PLEG is not healthy");
        time.Advance(TimeSpan.FromSeconds(10));
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Equal("True", Condition("KubeletUnhealthy")!.Status);
        Assert.Equal(failing.LastTransitionTime, Condition("KubeletUnhealthy")!.LastTransitionTime);

        // A heartbeat period later with nothing changed: only lastHeartbeatTime moves (and the message is refreshed).
        var patches = _api.StatusPatches.Count;
        time.Advance(TimeSpan.FromMinutes(5));
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Equal(patches + 1, _api.StatusPatches.Count);
        var beat = Condition("KubeletUnhealthy")!;
        Assert.Equal(failing.LastTransitionTime, beat.LastTransitionTime);
        Assert.Equal(time.GetUtcNow().UtcDateTime, beat.LastHeartbeatTime);
        Assert.Contains("journal.pleg-unhealthy: PLEG is not healthy", beat.Message, StringComparison.Ordinal);

        // Recovery: False, and the transition time moves.
        state.SetCheck("kubelet.healthz", CheckState.Ok, "200 in 3 ms");
        state.SetCheck("journal.pleg-unhealthy", CheckState.Ok, "not seen");
        time.Advance(TimeSpan.FromSeconds(10));
        await writer.SyncOnceAsync(CancellationToken.None);
        var recovered = Condition("KubeletUnhealthy")!;
        Assert.Equal("False", recovered.Status);
        Assert.Equal("KubeletIsHealthy", recovered.Reason);
        Assert.Equal(time.GetUtcNow().UtcDateTime, recovered.LastTransitionTime);

        // Within the heartbeat period and unchanged: no write at all.
        patches = _api.StatusPatches.Count;
        time.Advance(TimeSpan.FromSeconds(30));
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Equal(patches, _api.StatusPatches.Count);

        // Someone else's conditions are exactly as they were.
        AssertSame(ready, Condition("Ready")!);
        AssertSame(ntp, Condition("NTPProblem")!);
        Assert.Equal(CheckState.Ok, state.GetCheck(NodeConditionWriter.Check)!.State);
    }

    [Fact]
    public async Task ARestartedAgent_KeepsATrueConditionAndItsTransitionTime()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        var (writer, client) = Writer(state, time);
        state.SetCheck("runtime.containerd", CheckState.Failing, "no containerd socket at /run/containerd/containerd.sock: is containerd running?");
        await writer.SyncOnceAsync(CancellationToken.None);
        client.Dispose();
        var before = Condition("ContainerRuntimeUnhealthy")!;
        Assert.Equal("True", before.Status);

        // A new agent, a heartbeat period later (so it writes): its checks have not run yet, then fail again.
        time.Advance(TimeSpan.FromMinutes(6));
        var state2 = Support.State(time);
        var (again, client2) = Writer(state2, time);
        using var _ = client2;
        var patches = _api.StatusPatches.Count;
        await again.SyncOnceAsync(CancellationToken.None);
        Assert.Equal(patches, _api.StatusPatches.Count); // nothing known yet: nothing reset
        Assert.Equal("True", Condition("ContainerRuntimeUnhealthy")!.Status);
        state2.SetCheck("runtime.containerd", CheckState.Failing, "no containerd socket at /run/containerd/containerd.sock: is containerd running?");
        await again.SyncOnceAsync(CancellationToken.None);
        Assert.Equal(patches + 1, _api.StatusPatches.Count);
        var after = Condition("ContainerRuntimeUnhealthy")!;
        Assert.Equal("True", after.Status);
        Assert.Equal(time.GetUtcNow().UtcDateTime, after.LastHeartbeatTime);
        Assert.Equal(before.LastTransitionTime, after.LastTransitionTime);
    }

    [Fact]
    public async Task AFamilyTakenOutOfTheConfig_HasItsConditionDeletedOnce()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        state.SetCheck("node.stuck-processes", CheckState.Ok, "none");
        state.SetCheck("kubelet.unit", CheckState.Ok, "active");
        var (writer, client) = Writer(state, time);
        await writer.SyncOnceAsync(CancellationToken.None);
        client.Dispose();
        Assert.NotNull(Condition("StuckProcesses"));

        var (without, client2) = Writer(state, time, c => c.Types["StuckProcesses"] = string.Empty);
        using var _ = client2;
        await without.SyncOnceAsync(CancellationToken.None);
        Assert.Null(Condition("StuckProcesses"));
        Assert.NotNull(Condition("KubeletUnhealthy"));
        Assert.Single(_api.StatusPatches, p => p.Body.Contains("\"$patch\":\"delete\"", StringComparison.Ordinal));
        time.Advance(TimeSpan.FromMinutes(6));
        await without.SyncOnceAsync(CancellationToken.None);
        Assert.Single(_api.StatusPatches, p => p.Body.Contains("\"$patch\":\"delete\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnApiThatFails_IsRetriedWithBackoff_AndShownAsAWarning()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        var (writer, client) = Writer(state, time);
        using var _ = client;
        state.SetCheck("kubelet.healthz", CheckState.Failing, "refused");
        await writer.SyncOnceAsync(CancellationToken.None); // reads the node
        _api.FailWrites(1);
        state.SetCheck("kubelet.healthz", CheckState.Ok, "200");
        time.Advance(TimeSpan.FromSeconds(10));
        await writer.SyncOnceAsync(CancellationToken.None);
        var warn = state.GetCheck(NodeConditionWriter.Check)!;
        Assert.Equal(CheckState.Warning, warn.State);
        Assert.Contains("503", warn.Message, StringComparison.Ordinal);
        Assert.Equal("True", Condition("KubeletUnhealthy")!.Status);

        time.Advance(TimeSpan.FromMinutes(3)); // past any backoff
        await writer.SyncOnceAsync(CancellationToken.None);
        Assert.Equal("False", Condition("KubeletUnhealthy")!.Status);
        Assert.Equal(CheckState.Ok, state.GetCheck(NodeConditionWriter.Check)!.State);
    }

    [Fact]
    public async Task FiftyOomKillsInAMinute_AreOneAggregatedEvent_AndAFailedWriteIsKept()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        var (client, recorder) = EventRecorder(time, state);
        using var ownedClient = client;
        using var ownedRecorder = recorder;
        for (var i = 0; i < 50; i++)
        {
            recorder.Record("OOMKilling", $"Out of memory: Killed process {1000 + i} (python3)");
            time.Advance(TimeSpan.FromSeconds(1.2));
            await recorder.FlushAsync(CancellationToken.None);
        }

        time.Advance(TimeSpan.FromSeconds(11));
        await recorder.FlushAsync(CancellationToken.None);
        var e = Assert.Single(_api.Events);
        Assert.Equal(50, e.Count);
        Assert.Equal("OOMKilling", e.Reason);
        Assert.Equal("Warning", e.Type);
        Assert.Equal("Node", e.InvolvedObject.Kind);
        Assert.Equal(NodeName, e.InvolvedObject.Name);
        Assert.Equal(NodeEventRecorder.Component, e.Source.Component);
        Assert.Contains("Killed process 1049", e.Message, StringComparison.Ordinal);
        Assert.True(_api.EventWrites < 10, $"{_api.EventWrites} writes for 50 occurrences");

        // The agent's own events become Events too; a write that fails is kept and made later.
        _api.FailWrites(1);
        state.AddEvent("remediation-restart", "restarted kubelet.service after its checks failed for 5 min");
        await recorder.FlushAsync(CancellationToken.None);
        Assert.Equal(CheckState.Warning, state.GetCheck(NodeEventRecorder.Check)!.State);
        Assert.Single(_api.Events);
        time.Advance(TimeSpan.FromMinutes(3));
        await recorder.FlushAsync(CancellationToken.None);
        var restart = Assert.Single(_api.Events, x => x.Reason == "RemediationRestart");
        Assert.Equal(1, restart.Count);
        Assert.Equal(CheckState.Ok, state.GetCheck(NodeEventRecorder.Check)!.State);
    }

    [Fact]
    public async Task Stopping_WritesWhatIsPending_TheRebootsEventAndAGrownSeries()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        var (client, recorder) = EventRecorder(time, state);
        using var ownedClient = client;
        using var ownedRecorder = recorder;
        recorder.Record("OOMKilling", "Killed process 1 (python3)");
        await recorder.FlushAsync(CancellationToken.None);
        recorder.Record("OOMKilling", "Killed process 2 (python3)"); // grown, its next write not due for EventFlushInterval
        state.AddEvent("ladder-reboot", "asking logind to reboot"); // recorded the moment before logind stops the agent
        Assert.Equal(1, _api.EventWrites);

        await recorder.StopAsync(CancellationToken.None); // as the host stops it: no flush loop ran for these
        Assert.Equal(2, Assert.Single(_api.Events, e => e.Reason == "OOMKilling").Count);
        Assert.Single(_api.Events, e => e.Reason == "LadderReboot");
    }

    [Fact]
    public async Task ACreateWhoseAnswerWasLost_IsSentAgainUnderTheSameName_AndBecomesAPatch_NeverASecondEvent()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var state = Support.State(time);
        var (client, recorder) = EventRecorder(time, state);
        using var ownedClient = client;
        using var ownedRecorder = recorder;
        _api.LoseEventAnswers(1);
        state.AddEvent("ladder-reboot", "asking logind to reboot");
        await recorder.FlushAsync(CancellationToken.None); // stored by the API server; the agent never heard
        Assert.Equal(CheckState.Warning, state.GetCheck(NodeEventRecorder.Check)!.State);
        Assert.Single(_api.Events);

        recorder.Record("LadderReboot", "asking logind to reboot"); // and it happened once more meanwhile
        await recorder.StopAsync(CancellationToken.None); // the final write at stop: the same name, 409, then a patch
        var e = Assert.Single(_api.Events);
        Assert.Equal(("LadderReboot", 2), (e.Reason, e.Count));
        Assert.Equal(["POST 201", "POST 409", "PATCH 200"], _api.Writes.Where(w => w.Target.StartsWith("events/", StringComparison.Ordinal)).Select(w => $"{w.Verb} {w.Code}"));
        Assert.Equal(CheckState.Ok, state.GetCheck(NodeEventRecorder.Check)!.State);
    }

    /// <summary>A NodeEventRecorder writing to this test's fake API server (the caller disposes both).</summary>
    private (KubeClient Client, NodeEventRecorder Recorder) EventRecorder(FakeTimeProvider time, AgentState state)
    {
        var kubernetes = new KubernetesOptions { Kubeconfig = _api.WriteKubeconfig(_dir["kubeconfig"]) };
        var client = new KubeClient(Support.Options(kubernetes));
        var view = new ClusterView(kubernetes, NodeName, NullLogger<ClusterView>.Instance);
        return (client, new NodeEventRecorder(Support.Options(new NodeConditionsOptions { Enabled = true }), client, view, state, time, NullLogger<NodeEventRecorder>.Instance));
    }

    private static void AssertSame(V1NodeCondition a, V1NodeCondition b)
    {
        Assert.Equal((a.Type, a.Status, a.Reason, a.Message, a.LastHeartbeatTime, a.LastTransitionTime), (b.Type, b.Status, b.Reason, b.Message, b.LastHeartbeatTime, b.LastTransitionTime));
    }
}
