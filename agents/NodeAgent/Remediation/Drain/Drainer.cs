using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>How a drain ended.</summary>
public enum DrainEnd
{
    /// <summary>Every pod to evict is gone. Next (a later slice): the reboot, then <see cref="Drainer.UncordonAsync"/> once healthy.</summary>
    Drained,

    /// <summary>Only pods stuck Terminating with processes in D on a network mount are left: a reboot candidate.</summary>
    Stuck,

    /// <summary>The timeout passed with pods a PodDisruptionBudget protects: never forced; the node stays cordoned, our mark on it.</summary>
    Blocked,

    /// <summary>The timeout passed with pods that are only slow.</summary>
    Slow,

    /// <summary>Someone uncordoned the node (or removed our mark) meanwhile: the incident ends, nothing more is done to the node.</summary>
    Cancelled,

    /// <summary>The API server could not be used (cordon refused with 409 more than ConflictRetries times, or no answer until the timeout).</summary>
    Failed,

    /// <summary>NodeAgent:Remediation:Drain:Enabled is false: nothing was done.</summary>
    Disabled,

    /// <summary>The gate (later: the coordinator's lease) refused a step: stopped before it, the node left as it is.</summary>
    Refused,
}

public sealed record DrainOutcome(DrainEnd End, string Message, IReadOnlyList<Remaining> Pods);

/// <summary>
/// Cordons this node and drains it through the Eviction API (see README "Drain"): the steps are
/// cordon → evict (every PollInterval, until the pods are gone, stuck, or Timeout) → a verdict; each step an agent event
/// (and so a Node Event). It never deletes a pod itself, never evicts DaemonSet or mirror pods, and never uncordons
/// on its own: <see cref="UncordonAsync"/> is the step the remediation ladder calls once the node is healthy again.
/// Every call to the API server is bounded by Kubernetes:RequestTimeout; the pod list by PageSize and MaxPods.
/// </summary>
public sealed partial class Drainer
{
    private readonly DrainOptions _o;
    private readonly string _stateDirectory;
    private readonly KubeClient _client;
    private readonly AgentState _state;
    private readonly IStuckPods _stuck;
    private readonly IRemediationGate _gate;
    private readonly TimeProvider _time;
    private readonly ILogger<Drainer> _logger;
    private readonly ClusterView _cluster;

    public Drainer(IOptions<RemediationOptions> options, IOptions<NodeOptions> node, KubeClient client, ClusterView cluster, AgentState state, IStuckPods stuck, IRemediationGate gate, TimeProvider time, ILogger<Drainer> logger)
    {
        _gate = gate;
        _o = options.Value.Drain;
        _stateDirectory = node.Value.StateDirectory;
        _client = client;
        NodeName = cluster.NodeName;
        _cluster = cluster;
        _state = state;
        _stuck = stuck;
        _time = time;
        _logger = logger;
    }

    public string NodeName { get; }

    private string NodePath => "/api/v1/nodes/" + Uri.EscapeDataString(NodeName);

    /// <summary>
    /// Drain for <paramref name="incident"/>: cordon (with our mark), then evict until a verdict. Resumes an incident
    /// already recorded on this host with its first start time (the timeout is not started again).
    /// </summary>
    public async Task<DrainOutcome> DrainAsync(string incident, CancellationToken ct)
    {
        _draining = true;
        try
        {
            return await DrainOnceAsync(incident, ct).ConfigureAwait(false);
        }
        finally
        {
            _draining = false;
        }
    }

    // Only a drain under way says what holds it (the check remediation.drain): not the uncordon, not the mark's steps.
    private bool _draining;

    private async Task<DrainOutcome> DrainOnceAsync(string incident, CancellationToken ct)
    {
        if (!_o.Enabled)
        {
            return new DrainOutcome(DrainEnd.Disabled, "NodeAgent:Remediation:Drain:Enabled is false", []);
        }

        if (_gate.HasEnded(incident))
        {
            return EndedFromOutside(incident, "cancelled at the coordinator");
        }

        var saved = DrainRecord.Load(_stateDirectory, out var unreadable) is { } r && r.Incident == incident ? r : null;
        if (unreadable is not null)
        {
            // Said, not skipped over: what the record held (an earlier incident's step and deadline) is lost.
            Event(incident, "drain-record-unreadable", $"the saved drain record cannot be read ({unreadable}); this incident starts afresh");
        }
        var record = saved ?? new DrainRecord(incident, "cordon", _time.GetUtcNow());
        if (Save(record) is { } unsaved)
        {
            // Without its record an incident could not be resumed (nor, later, its reboot kept to one): not started.
            var message = $"not started: the incident cannot be recorded in {DrainRecord.PathIn(_stateDirectory)}: {unsaved}";
            Event(incident, "drain-failed", message);
            return new DrainOutcome(DrainEnd.Failed, message, []);
        }

        // Resumed past its cordon (the agent restarted): an admin's uncordon meanwhile ends the incident, never a second cordon.
        string? cordoned, undone;
        try
        {
            (cordoned, undone) = saved is { Step: not "cordon" } ? (null, await ResumeCancelledAsync(incident, ct).ConfigureAwait(false)) : await CordonAsync(incident, ct).ConfigureAwait(false);
        }
        catch (RemediationRefusedException ex)
        {
            return Refused(incident, "cordon", ex.Message);
        }

        if (undone is not null)
        {
            Event(incident, "drain-cancelled", undone);
            DrainRecord.Clear(_stateDirectory);
            return new DrainOutcome(DrainEnd.Cancelled, undone, []);
        }

        if (cordoned is not null)
        {
            Event(incident, "drain-failed", $"could not cordon {NodeName}: {cordoned}");
            return new DrainOutcome(DrainEnd.Failed, cordoned, []);
        }

        record = record with { Step = "evict" };
        Save(record);
        string? lastWaiting = null;
        string? apiFailing = null;
        while (true)
        {
            DrainVerdict verdict;
            var markChanged = _cluster.NodeMarkChanged; // before the Node is read: an uncordon from now on wakes the wait
            try
            {
                if (await CancelledAsync(incident, ct).ConfigureAwait(false) is { } cancelled)
                {
                    Event(incident, "drain-cancelled", cancelled);
                    DrainRecord.Clear(_stateDirectory);
                    return new DrainOutcome(DrainEnd.Cancelled, cancelled, []);
                }

                var remaining = await EvictRoundAsync(incident, ct).ConfigureAwait(false);
                var stuckUids = _stuck.OnNetworkMounts();
                verdict = DrainJudge.Judge(remaining, stuckUids, record.Started, _time.GetUtcNow(), _o.Timeout, _o.StuckAfter);
                var said = Classified(verdict, stuckUids, record.Started);
                Say(incident, verdict.Kind == VerdictKind.Drained ? CheckState.Ok : CheckState.Warning, said);
                if (verdict.Kind != VerdictKind.Drained && record.Said != said)
                {
                    record = record with { Said = said }; // said again by an agent restarted before the next drain
                    Save(record);
                }
                if (apiFailing is not null)
                {
                    Event(incident, "drain-api-recovered", $"the API server answers again (it failed with: {apiFailing})");
                    apiFailing = null;
                }
            }
            catch (RemediationRefusedException ex)
            {
                return Refused(incident, "evict", ex.Message);
            }
            catch (TooManyPodsException ex)
            {
                Event(incident, "drain-failed", ex.Message + ": not drained");
                return new DrainOutcome(DrainEnd.Failed, ex.Message + ": not drained", []);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
            {
                var why = _client.Why(ex);
                if (apiFailing is null)
                {
                    Log.ApiFailed(_logger, NodeName, why);
                    Event(incident, "drain-api-failed", $"the API server cannot be used: {why}; the node stays cordoned, retrying every {Seconds(_o.PollInterval)}");
                }

                apiFailing = why;
                if (_time.GetUtcNow() - record.Started >= _o.Timeout)
                {
                    var message = $"no drain within {Seconds(_o.Timeout)}: the API server cannot be used ({why}); the node stays cordoned with our mark";
                    Event(incident, "drain-failed", message);
                    return new DrainOutcome(DrainEnd.Failed, message, []);
                }

                await _cluster.WaitNodeMarkChangeAsync(markChanged, _o.PollInterval, _time, ct).ConfigureAwait(false); // an uncordon since this round's look wakes it at once
                continue;
            }

            switch (verdict.Kind)
            {
                case VerdictKind.Drained:
                    Event(incident, "drain-done", $"{NodeName} is drained (DaemonSet and mirror pods left)");
                    Save(record with { Step = "drained" });
                    return new DrainOutcome(DrainEnd.Drained, verdict.Summary, []);
                case VerdictKind.Stuck:
                    Event(incident, "drain-stuck", $"{verdict.Summary}: only a reboot helps");
                    Save(record with { Step = "stuck" });
                    return new DrainOutcome(DrainEnd.Stuck, verdict.Summary, verdict.Pods);
                case VerdictKind.Blocked:
                    Event(incident, "drain-blocked", $"no drain within {Seconds(_o.Timeout)}, never forced: {verdict.Summary}");
                    return new DrainOutcome(DrainEnd.Blocked, verdict.Summary, verdict.Pods);
                case VerdictKind.Slow:
                    Event(incident, "drain-timed-out", $"no drain within {Seconds(_o.Timeout)}: {verdict.Summary}");
                    return new DrainOutcome(DrainEnd.Slow, verdict.Summary, verdict.Pods);
                default:
                    // One event per change of what holds the drain, not one per poll (pods just evicted are not news).
                    var shape = string.Join(",", verdict.Pods.Where(p => p.Hold != Hold.Evicting).Select(p => $"{p.Id}:{p.Hold}"));
                    if (shape.Length > 0 && shape != lastWaiting)
                    {
                        Event(incident, "drain-waiting", DrainJudge.Classify(verdict, _stuck.OnNetworkMounts()) + ": " + verdict.Summary);
                        lastWaiting = shape;
                    }

                    await _cluster.WaitNodeMarkChangeAsync(markChanged, _o.PollInterval, _time, ct).ConfigureAwait(false); // an uncordon since this round's look wakes it at once
                    break;
            }
        }
    }

    /// <summary>
    /// Gives the node back for <paramref name="incident"/> (throws <see cref="RemediationRefusedException"/> when the
    /// gate refuses, and the API's failures as they come: the caller retries): uncordon only if our mark is there for this incident, the
    /// node was schedulable before we came, and it is still cordoned (an admin's uncordon meanwhile is left as it is).
    /// Our mark is removed in every case but <see cref="UncordonDecision.NotOurs"/>. The patch carries the Node's
    /// resourceVersion: a 409 reads the Node again and decides again (ConflictRetries times).
    /// </summary>
    public async Task<UncordonDecision> UncordonAsync(string incident, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var node = await GetNodeAsync(ct).ConfigureAwait(false);
            var decision = Uncordon.Decide(CordonMark.Read(node.Metadata?.Annotations), incident, node.Spec?.Unschedulable == true);
            if (decision == UncordonDecision.NotOurs)
            {
                return decision;
            }

            var patch = new JsonObject
            {
                ["metadata"] = new JsonObject
                {
                    ["resourceVersion"] = node.Metadata?.ResourceVersion,
                    ["annotations"] = new JsonObject { [CordonMark.Annotation] = null },
                },
            };
            if (decision == UncordonDecision.Uncordon)
            {
                patch["spec"] = new JsonObject { ["unschedulable"] = false };
            }

            if (await _gate.RefusesAsync(incident, "uncordon", ct).ConfigureAwait(false) is { } refused)
            {
                Event(incident, "drain-refused", $"the uncordon of {NodeName} was refused: {refused}");
                throw new RemediationRefusedException(refused);
            }

            try
            {
                await PatchNodeAsync(patch, ct).ConfigureAwait(false);
            }
            catch (KubeApiException ex) when (ex.StatusCode == 409 && attempt < _o.ConflictRetries)
            {
                continue;
            }

            DrainRecord.Clear(_stateDirectory);
            await _gate.ReleaseAsync(incident, ct).ConfigureAwait(false);
            Event(incident, decision switch
            {
                UncordonDecision.Uncordon => "drain-uncordoned",
                UncordonDecision.LeaveCordoned => "drain-left-cordoned",
                _ => "drain-cancelled",
            }, decision switch
            {
                UncordonDecision.Uncordon => $"{NodeName} uncordoned: we cordoned it and it was schedulable before",
                UncordonDecision.LeaveCordoned => $"{NodeName} left cordoned: it was already unschedulable before we cordoned it",
                _ => $"{NodeName} was uncordoned by someone else meanwhile: left as it is",
            });
            return decision;
        }
    }

    /// <summary>
    /// Writes <paramref name="step"/> into our mark of <paramref name="incident"/> on the Node (the ladder's rung, so
    /// `kubectl get node -o yaml` shows where the incident is): false when the mark is not ours for it or the gate
    /// refuses; a 409 reads the Node again (ConflictRetries times); the API's failures are thrown (the caller says them).
    /// </summary>
    public async Task<bool> MarkStepAsync(string incident, string step, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var node = await GetNodeAsync(ct).ConfigureAwait(false);
            var mark = CordonMark.Read(node.Metadata?.Annotations);
            if (mark?.Incident != incident)
            {
                return false;
            }

            if (mark.Step == step)
            {
                return true;
            }

            if (await _gate.RefusesAsync(incident, "mark", ct).ConfigureAwait(false) is not null)
            {
                return false;
            }

            try
            {
                await PatchNodeAsync(new JsonObject
                {
                    ["metadata"] = new JsonObject
                    {
                        ["resourceVersion"] = node.Metadata?.ResourceVersion,
                        ["annotations"] = new JsonObject { [CordonMark.Annotation] = (mark with { Step = step }).ToJson() },
                    },
                }, ct).ConfigureAwait(false);
                return true;
            }
            catch (KubeApiException ex) when (ex.StatusCode == 409 && attempt < _o.ConflictRetries)
            {
                // changed since we read it: read again
            }
        }
    }

    // On resuming past the cordon: why the incident ended while we were away, or null (also when the API cannot tell
    // yet: the evict rounds ask again and handle the API's failures).
    private async Task<string?> ResumeCancelledAsync(string incident, CancellationToken ct)
    {
        try
        {
            return await CancelledAsync(incident, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
        {
            return null;
        }
    }

    // Cordon with our mark: (null, null) when done, else why not, or why the incident ended (our mark for it is on a
    // schedulable Node: we cordoned, then someone uncordoned). A 409 (the Node changed since we read it) reads it again.
    private async Task<(string? Failed, string? Cancelled)> CordonAsync(string incident, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            KubeNode node;
            try
            {
                node = await GetNodeAsync(ct).ConfigureAwait(false);
                var existing = CordonMark.Read(node.Metadata?.Annotations);
                if (existing?.Incident == incident)
                {
                    // Our cordon for this incident landed before a restart: resumed, or uncordoned by someone since.
                    return node.Spec?.Unschedulable == true ? (null, null) : (null, await CancelledAsync(incident, ct).ConfigureAwait(false));
                }

                var mark = CordonMark.ForCordon(existing, incident, node.Spec?.Unschedulable == true, _time.GetUtcNow());
                if (await _gate.RefusesAsync(incident, "cordon", ct).ConfigureAwait(false) is { } refused)
                {
                    throw new RemediationRefusedException(refused);
                }

                await PatchNodeAsync(new JsonObject
                {
                    ["metadata"] = new JsonObject
                    {
                        ["resourceVersion"] = node.Metadata?.ResourceVersion,
                        ["annotations"] = new JsonObject { [CordonMark.Annotation] = mark.ToJson() },
                    },
                    ["spec"] = new JsonObject { ["unschedulable"] = true },
                }, ct).ConfigureAwait(false);
                Event(incident, "drain-cordoned", mark.UnschedulableBefore
                    ? $"{NodeName} was already unschedulable; marked for incident {incident} (it will not be uncordoned by us)"
                    : $"{NodeName} cordoned for incident {incident}");
                return (null, null);
            }
            catch (KubeApiException ex) when (ex.StatusCode == 409)
            {
                if (attempt >= _o.ConflictRetries)
                {
                    return ($"the Node kept changing under us: 409 Conflict {(attempt + 1).ToString(CultureInfo.InvariantCulture)} times ({ex.StatusMessage})", null);
                }
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
            {
                return (_client.Why(ex), null);
            }
        }
    }

    // The incident ends when our mark is gone or changed, or the node is schedulable again (an admin's uncordon).
    private async Task<string?> CancelledAsync(string incident, CancellationToken ct)
    {
        var node = await GetNodeAsync(ct).ConfigureAwait(false);
        var mark = CordonMark.Read(node.Metadata?.Annotations);
        if (mark?.Incident != incident)
        {
            return $"our mark for incident {incident} is gone from {NodeName}: someone else took over; nothing more is done";
        }

        if (node.Spec?.Unschedulable == true)
        {
            return null;
        }

        // Uncordoned by someone else: remove our mark, leave the node as they want it (a 409 or a refusing gate here only
        // leaves the mark; UncordonAsync removes it later).
        if (await _gate.RefusesAsync(incident, "unmark", ct).ConfigureAwait(false) is not null)
        {
            return $"{NodeName} was uncordoned by someone else during the drain: incident {incident} ends (our mark is left: the gate refused its removal)";
        }

        try
        {
            await PatchNodeAsync(new JsonObject
            {
                ["metadata"] = new JsonObject { ["resourceVersion"] = node.Metadata?.ResourceVersion, ["annotations"] = new JsonObject { [CordonMark.Annotation] = null } },
            }, ct).ConfigureAwait(false);
        }
        catch (KubeApiException ex) when (ex.StatusCode == 409)
        {
            // changed again meanwhile: the mark stays; UncordonAsync would find it uncordoned and leave it
        }

        return $"{NodeName} was uncordoned by someone else during the drain: incident {incident} ends, no more evictions";
    }

    // One round: list the node's pods, evict those not yet terminating; what is still there and why.
    private async Task<List<Remaining>> EvictRoundAsync(string incident, CancellationToken ct)
    {
        var remaining = new List<Remaining>();
        foreach (var pod in await ListPodsAsync(ct).ConfigureAwait(false))
        {
            if (DrainJudge.LeftAlone(pod) is not null || pod.Metadata?.Name is not { } name || pod.Metadata.Namespace is not { } ns)
            {
                continue;
            }

            var uid = pod.Metadata.Uid ?? string.Empty;
            if (pod.Metadata.DeletionTimestamp is { } due)
            {
                remaining.Add(new Remaining(ns, name, uid, Hold.Terminating, string.Empty, due));
                continue;
            }

            if (await _gate.RefusesAsync(incident, "evict", ct).ConfigureAwait(false) is { } refused)
            {
                throw new RemediationRefusedException(refused);
            }

            var (hold, detail) = await EvictAsync(ns, name, ct).ConfigureAwait(false);
            if (hold is { } h)
            {
                remaining.Add(new Remaining(ns, name, uid, h, detail, null));
            }
        }

        return remaining;
    }

    // Null hold: the pod is gone (404). Evicting: accepted. The refusals as the API server words them.
    private async Task<(Hold? Hold, string Detail)> EvictAsync(string ns, string name, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["apiVersion"] = "policy/v1",
            ["kind"] = "Eviction",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
        };
        if (_o.GracePeriodSeconds >= 0)
        {
            body["deleteOptions"] = new JsonObject { ["gracePeriodSeconds"] = _o.GracePeriodSeconds };
        }

        try
        {
            using var cts = _client.Deadline(ct);
            await _client.Api.PostAsync($"/api/v1/namespaces/{Uri.EscapeDataString(ns)}/pods/{Uri.EscapeDataString(name)}/eviction", body.ToJsonString(), KubeJson.Default.KubeStatus, cts.Token).ConfigureAwait(false);
            return (Hold.Evicting, string.Empty);
        }
        catch (KubeApiException ex) when (ex.StatusCode == 404)
        {
            return (null, string.Empty);
        }
        catch (KubeApiException ex) when (ex.StatusCode == 429 && ex.Causes.FirstOrDefault(c => c.Reason == "DisruptionBudget") is { } cause)
        {
            return (Hold.Budget, Bound(cause.Message ?? ex.StatusMessage ?? string.Empty));
        }
        catch (KubeApiException ex) when (ex.StatusCode == 500 && ex.StatusMessage?.Contains("more than one PodDisruptionBudget", StringComparison.Ordinal) == true)
        {
            return (Hold.Budgets, Bound(ex.StatusMessage));
        }
        catch (KubeApiException ex) when (ex.StatusCode is (>= 400 and < 500) or 500)
        {
            // Refused for this pod (403, another 429, a webhook's 400/422/500, a 409): said with the server's words, and
            // the other pods are still evicted. Only an API server that cannot be used (502-504, no answer) stops the round.
            return (Hold.Refused, Bound(ex.StatusMessage ?? ex.Message));
        }
    }

    // Null when saved; else why not (logged; a later step's failure does not stop the drain, only its resumption).
    private string? Save(DrainRecord record)
    {
        try
        {
            record.Save(_stateDirectory);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.RecordFailed(_logger, DrainRecord.PathIn(_stateDirectory), ex.Message);
            return ex.Message;
        }
    }

    private async Task<KubeNode> GetNodeAsync(CancellationToken ct)
    {
        using var cts = _client.Deadline(ct);
        return await _client.Api.GetAsync(NodePath, KubeJson.Default.KubeNode, cts.Token).ConfigureAwait(false);
    }

    private async Task PatchNodeAsync(JsonObject patch, CancellationToken ct)
    {
        using var cts = _client.Deadline(ct);
        await _client.Api.PatchAsync(NodePath, "application/merge-patch+json", patch.ToJsonString(), KubeJson.Default.KubeNode, cts.Token).ConfigureAwait(false);
    }

    // Every pod bound to this node, PageSize at a time; more than MaxPods is refused (memory stays bounded).
    private Task<List<KubePod>> ListPodsAsync(CancellationToken ct) =>
        _client.ListNodePodsAsync(NodeName, _o.PageSize, _o.MaxPods, "NodeAgent:Remediation:Drain:MaxPods", ct);

    // Steps that went as wished are Normal Events; the rest Warning.
    private static readonly HashSet<string> Normal = new(StringComparer.Ordinal) { "drain-done", "drain-uncordoned", "drain-left-cordoned", "drain-api-recovered" };

    /// <summary>The check that says what holds this node's drain (<see cref="Common.Contracts.ContractNames.RemediationDrainCheck"/>).</summary>
    public const string Check = Common.Contracts.ContractNames.RemediationDrainCheck;

    // What holds the drain now, for `agentctl remediation status` (through the agent's report): warning while something
    // does, ok when nothing does. Quiet: the drain's own events have said it already.
    private void Say(string incident, CheckState state, string what) =>
        _state.SetCheck(Check, state, Bound(what), details: new Dictionary<string, string> { ["incident"] = Bound(incident) }, quiet: true);

    // The check's line for a verdict: its class first (DrainJudge.Classify), then the pods and what comes next.
    private string Classified(DrainVerdict verdict, IReadOnlySet<string> stuckUids, DateTimeOffset started) =>
        DrainJudge.Classify(verdict, stuckUids) + ": " + verdict.Kind switch
        {
            VerdictKind.Drained => $"{NodeName} is drained",
            VerdictKind.Stuck => $"{verdict.Summary}: only a reboot helps",
            VerdictKind.Waiting => $"{verdict.Summary}; waiting up to {Seconds(_o.Timeout)} from {started.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}",
            VerdictKind.Blocked => $"no drain within {Seconds(_o.Timeout)}, never forced: {verdict.Summary}; tried again after the ladder's cooldown, no reboot while a budget says no",
            _ => $"no drain within {Seconds(_o.Timeout)}: {verdict.Summary}; tried again after the ladder's cooldown",
        };

    /// <summary>
    /// An agent restarted mid-incident (at its drain, reboot or hard-reset rung) says again what held the drain of
    /// <paramref name="incident"/> when last said, from the drain's record: the status does not go blank until the next drain.
    /// </summary>
    public void SayAgain(string incident)
    {
        if (_o.Enabled && DrainRecord.Load(_stateDirectory, out _) is { Said: { Length: > 0 } said } r && r.Incident == incident)
        {
            Say(incident, CheckState.Warning, said);
        }
    }

    /// <summary>
    /// Nothing holds a drain of <paramref name="incident"/> any more (<paramref name="how"/>: it ended, the node is back
    /// from its reboot): a warning said of it becomes ok. Nothing is said when no drain said anything.
    /// </summary>
    public void Ended(string incident, string how)
    {
        if (_state.GetCheck(Check) is { State: not CheckState.Ok } said && said.Details.TryGetValue("incident", out var of) && of == incident)
        {
            Say(incident, CheckState.Ok, $"no drain: {how}");
        }
    }

    private void Event(string incident, string kind, string message)
    {
        switch (_draining ? kind : null)
        {
            case "drain-api-failed":
                Say(incident, CheckState.Warning, "waiting: " + message);
                break;
            case "drain-failed":
                Say(incident, CheckState.Warning, "failed: " + message);
                break;
            case "drain-refused":
                Say(incident, CheckState.Warning, "refused: " + message);
                break;
            case "drain-cancelled":
                Say(incident, CheckState.Ok, "cancelled: " + message);
                break;
        }

        var bounded = Bound(message);
        Log.Step(_logger, kind, NodeName, incident, bounded);
        var details = new Dictionary<string, string> { ["incident"] = Bound(incident), ["node"] = NodeName };
        if (Normal.Contains(kind))
        {
            details[NodeEventRecorder.NormalDetail] = "Normal";
        }

        _state.AddEvent(kind, bounded, details);
    }

    // Names and messages from the cluster (pod names, budget names in the API server's message): no control
    // characters, at most the length of an Event message.
    private static string Bound(string s) => ConditionFamilies.Bound(s);

    private static string Seconds(TimeSpan t) => $"{t.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)}s";


    private DrainOutcome Refused(string incident, string step, string why)
    {
        if (_gate.HasEnded(incident))
        {
            return EndedFromOutside(incident, why);
        }

        var message = $"the {step} step was refused: {why}; stopped, {NodeName} left as it is";
        Event(incident, "drain-refused", message);
        return new DrainOutcome(DrainEnd.Refused, message, []);
    }

    // An admin cancelled the incident at the coordinator: it ends here and is not resumed (its record goes); the node is
    // left as it is, our mark included, for the admin to decide (an uncordon of theirs is never undone).
    private DrainOutcome EndedFromOutside(string incident, string why)
    {
        DrainRecord.Clear(_stateDirectory);
        var message = $"incident {incident} was ended by an admin ({why}); {NodeName} is left as it is";
        Event(incident, "drain-cancelled", message);
        return new DrainOutcome(DrainEnd.Cancelled, message, []);
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.DrainStep, LogLevel.Warning, "drain: {Kind} on {Node} (incident {Incident}): {Message}")]
        public static partial void Step(ILogger logger, string kind, string node, string incident, string message);

        [LoggerMessage(EventIds.DrainApiFailed, LogLevel.Warning, "drain of {Node}: the API server cannot be used: {Why}; retrying")]
        public static partial void ApiFailed(ILogger logger, string node, string why);

        [LoggerMessage(EventIds.DrainRecordFailed, LogLevel.Error, "drain: cannot write {Path}: {Why}")]
        public static partial void RecordFailed(ILogger logger, string path, string why);
    }
}
