using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.NodeAgent.Remediation.Drain;

namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>
/// The incident ladder around <see cref="IncidentLadder"/>: every Interval it reads the triggers (no incident) or what
/// the open incident needs (the boot, the Node, the checks), saves the decision's record durably, then acts — the
/// unit's restart over D-Bus, the drain (<see cref="Drainer"/>), the reboot through logind, the admin's hard reset,
/// the uncordon. Beside it, while an incident is open past its restart rung, the coordinator's lease is renewed every
/// RenewInterval, whatever the drain is doing (blocked, stuck, slow) or the reboot. A record that cannot be saved
/// stops the action that needs it (the reboot is asked only once its record says so).
/// </summary>
public sealed partial class LadderService : BackgroundService
{
    private static readonly Gauge Open = Metrics.CreateGauge("toolforge_remediation_incident_open", "1 while this node has an open remediation incident (NodeAgent:Remediation:Ladder), else 0.");
    private static readonly Gauge Stalled = Metrics.CreateGauge("toolforge_remediation_incident_stalled", "1 while this node's open incident waits for an admin (its drain, reboot or recovery did not finish in time; the node stays cordoned), else 0.");
    private static readonly Gauge Started = Metrics.CreateGauge("toolforge_remediation_incident_started_timestamp_seconds", "When this node's open incident started (Unix seconds); 0 with none.");

    private readonly LadderOptions _o;
    private readonly string _stateDirectory;
    private readonly string _kubeletUnit;
    private readonly CriOptions _cri;
    private readonly AgentState _state;
    private readonly StuckProcessEvidence _stuck;
    private readonly TimeSpan _stuckFresh;
    private readonly Drainer _drainer;
    private readonly IRemediationGate _gate;
    private readonly KubeClient _client;
    private readonly ILadderMachine _machine;
    private readonly TimeProvider _time;
    private readonly ILogger<LadderService> _logger;
    private volatile Incident? _incident;
    private bool _loaded;
    private bool _saved; // _incident is what the file holds
    private string? _lastHeld;
    private string? _lastRefusal;
    private string? _lastRenewal;
    private string? _healthySaid;
    private string? _unreadable; // the saved incident exists but cannot be read (or is invalid): nothing opens until an admin removes it

    public LadderService(IOptions<RemediationOptions> options, IOptions<NodeOptions> node, IOptions<KubeletOptions> kubelet, IOptions<CriOptions> cri, IOptions<StuckProcessesOptions> processes,
        AgentState state, StuckProcessEvidence stuck, Drainer drainer, IRemediationGate gate, KubeClient client, ILadderMachine machine, TimeProvider time, ILogger<LadderService> logger)
    {
        _stuckFresh = 3 * processes.Value.Interval; // as the drain (ProcStuckPods): an older scan is no evidence
        _o = options.Value.Ladder;
        _stateDirectory = node.Value.StateDirectory;
        _kubeletUnit = kubelet.Value.Unit;
        _cri = cri.Value;
        _state = state;
        _stuck = stuck;
        _drainer = drainer;
        _gate = gate;
        _client = client;
        _machine = machine;
        _time = time;
        _logger = logger;
    }

    /// <summary>The incident as last saved (open or the last one ended), for tests and status.</summary>
    public Incident? Current => _incident;

    private string NodeName => _drainer.NodeName;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_o.Enabled)
        {
            return;
        }

        LoadOnce(); // before the renewal starts: a resumed incident's lease is renewed from the first RenewInterval
        using var stopRenewing = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var renewing = RenewLoopAsync(stopRenewing.Token);
        try
        {
            using var timer = new PeriodicTimer(_o.Interval, _time);
            do
            {
                if (renewing.IsCompleted)
                {
                    // The renewal loop ended on its own (it only ends by an exception): never a ladder alive that no
                    // longer renews its lease. Thrown: the host stops and systemd starts the agent again.
                    await renewing.ConfigureAwait(false);
                    throw new InvalidOperationException("the ladder's lease renewal loop ended");
                }

                await GuardedTickAsync(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        finally
        {
            await stopRenewing.CancelAsync().ConfigureAwait(false);
            try
            {
                await renewing.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopRenewing.IsCancellationRequested)
            {
                // stopped with the ladder
            }
        }
    }

    /// <summary>The number of ticks in a row that failed unexpectedly after which the incident is reported stalled.</summary>
    public const int FailedTicksStalled = 6;

    private int _failedTicks;

    /// <summary>A tick whose unexpected failure is said (the exception itself, for its stack), counted, and stalls after <see cref="FailedTicksStalled"/> in a row.</summary>
    public async Task GuardedTickAsync(CancellationToken ct)
    {
        try
        {
            await TickAsync(ct).ConfigureAwait(false);
            if (_failedTicks > 0)
            {
                _failedTicks = 0;
                Stalled.Set(_unreadable is not null || _incident is { Ended: null, Stalled: not null } ? 1 : 0);
            }
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            // Said, and the next tick tries again: an unexpected failure must not end the ladder with the node cordoned.
            _failedTicks++;
            if (KubeClient.IsApiFailure(ex))
            {
                Log.TickFailed(_logger, ex.GetType().Name, _client.Why(ex), _failedTicks);
            }
            else
            {
                Log.TickFailedWith(_logger, ex, ex.GetType().Name, _failedTicks);
            }

            if (_failedTicks == FailedTicksStalled)
            {
                Event(_incident, "ladder-stalled", $"{FailedTicksStalled} ticks in a row failed ({ex.GetType().Name}: {ex.Message}): the ladder does nothing until they pass; an admin looks at the agent's journal (3726)");
            }

            if (_failedTicks >= FailedTicksStalled)
            {
                Stalled.Set(1);
            }
        }
    }

    /// <summary>Whether the ladder is stalled by ticks failing in a row (for tests and status).</summary>
    public bool FailingTicks => _failedTicks >= FailedTicksStalled;

    /// <summary>
    /// The check that says whether a hold is on this node (the Node's label or annotation Holds:Key, a Holds:LockFiles
    /// file, the Node unreadable): warning while one is, so `agentctl node` and the coordinator's `agentctl remediation
    /// status` show why no incident starts here. Looked at every RenewInterval, whatever the ladder is doing (from the
    /// renewal loop too, which runs beside a drain). The Node unreadable is "unknown", not a hold an admin put: the
    /// actions still wait for it (fail closed), but an API server's blip does not show the fleet as held.
    /// </summary>
    public const string HoldCheck = Common.Contracts.ContractNames.RemediationHoldCheck;

    private long _holdLookedAtTicks = long.MinValue;

    private async Task ReportHoldAsync(DateTimeOffset now, CancellationToken ct)
    {
        var last = Interlocked.Read(ref _holdLookedAtTicks);
        if ((last != long.MinValue && now.UtcTicks - last < _o.RenewInterval.Ticks)
            || Interlocked.CompareExchange(ref _holdLookedAtTicks, now.UtcTicks, last) != last)
        {
            return; // looked at within the interval, or the other loop is looking now
        }

        var (hold, unreadable) = await LookForHoldAsync(ct).ConfigureAwait(false);
        _state.SetCheck(HoldCheck, hold is null ? CheckState.Ok : unreadable ? CheckState.Unknown : CheckState.Warning,
            hold is null ? $"no hold (the Node's {_o.Holds.Key}, {string.Join(", ", _o.Holds.LockFiles)})"
            : unreadable ? ConditionFamilies.Bound($"cannot tell: {hold}; the reboot, hard reset and uncordon wait until it can be read")
            : ConditionFamilies.Bound($"held: {hold}: no incident starts, an open one's reboot, hard reset and uncordon wait"));
    }

    /// <summary>One look at the triggers or the open incident, and the action it calls for; returns that action.</summary>
    public async Task<LadderAction> TickAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await ReportHoldAsync(now, ct).ConfigureAwait(false);
        var incident = LoadOnce();
        if (_unreadable is not null)
        {
            if (File.Exists(Incident.PathIn(_stateDirectory)))
            {
                // Fail closed: it may be an open incident (cordoned, its reboot asked): nothing opens, nothing is undone.
                Open.Set(1);
                Stalled.Set(1);
                return LadderAction.Wait;
            }

            _unreadable = null; // an admin removed it: the ladder starts afresh
            Stalled.Set(0);
            Open.Set(0);
        }

        if (incident is null || incident.Ended is not null)
        {
            if (!IncidentLadder.MayOpen(incident, now, _o) || Triggered(now) is not { } hit)
            {
                return LadderAction.Wait;
            }

            if (await HeldAsync(ct).ConfigureAwait(false) is { } held)
            {
                if (held != _lastHeld)
                {
                    Event(null, "ladder-held", $"{hit.Why}, but no incident starts: {held}");
                    _lastHeld = held;
                }

                return LadderAction.Wait;
            }

            _lastHeld = null;
            var opened = IncidentLadder.Open(IncidentLadder.NewId(hit.Name, now), hit, now, _machine.BootId());
            if (!Save(opened))
            {
                return LadderAction.Wait; // not started: without its record it could not be resumed nor its reboot kept to one
            }

            Event(opened, "ladder-opened", $"{hit.Why}: incident {opened.Id} opens at rung {IncidentLadder.Name(opened.Rung)}");
            incident = opened;
        }

        var view = await ViewAsync(incident, now, ct).ConfigureAwait(false);
        var step = IncidentLadder.Decide(incident, view, _o);
        if (step.Action is LadderAction.Reboot or LadderAction.HardReset or LadderAction.Uncordon && await HeldAsync(ct).ConfigureAwait(false) is { } hold)
        {
            // A hold (puppet disabled, the Node's hold label) stops the reboot, the hard reset and the uncordon of an open
            // incident too: an admin's hands are on the node. Waited for, said once; stalled after the rung's timeout.
            var what = step.Action switch { LadderAction.Reboot => "reboot", LadderAction.HardReset => "hard reset", _ => "uncordon" };
            if (hold != _lastHeld)
            {
                Event(incident, "ladder-held", $"the {what} waits: {hold}");
                _lastHeld = hold;
            }

            var keep = step.Action == LadderAction.Uncordon ? step.Next : incident with { Cordoned = step.Next.Cordoned };
            WaitOrStall(keep, RungTimeout(keep.Rung), now, "held", $"the {what} was held for {RungTimeout(keep.Rung).TotalMinutes:0} min ({hold}): the node stays cordoned; an admin decides");
            return LadderAction.Wait;
        }

        _lastHeld = null;
        return await ActAsync(incident, step, now, ct).ConfigureAwait(false);
    }

    private TimeSpan RungTimeout(Rung rung) => rung switch
    {
        Rung.Reboot => _o.Reboot.Timeout,
        Rung.HardReset => _o.HardReset.Timeout,
        Rung.Drain => _o.Drain.Timeout,
        Rung.Restart => _o.Restart.Timeout,
        _ => _o.Recover.Timeout,
    };

    // The rung's action waits (held, refused): saved as it is; past the rung's timeout stalled, said once, for an admin.
    private void WaitOrStall(Incident keep, TimeSpan timeout, DateTimeOffset now, string stall, string why)
    {
        if (now - keep.RungStarted >= timeout && keep.Stalled != stall)
        {
            keep = keep with { Stalled = stall };
            Event(keep, "ladder-stalled", why);
        }

        Save(keep);
    }

    private async Task<LadderAction> ActAsync(Incident current, LadderStep step, DateTimeOffset now, CancellationToken ct)
    {
        var next = step.Next;
        switch (step.Action)
        {
            case LadderAction.Reboot:
                // Paced and gated like the cordon (the coordinator's Alertmanager gate covers the step "reboot").
                if (await RefusedAsync(next, "reboot", ct).ConfigureAwait(false))
                {
                    RefusedTooLong(current, next, now, "reboot");
                    return LadderAction.Wait;
                }

                if (!Save(next))
                {
                    return LadderAction.Wait; // never a reboot the record does not hold
                }

                Report(step);
                try
                {
                    await _machine.RebootAsync(ct).ConfigureAwait(false);
                }
                catch (LadderActionException ex)
                {
                    Event(next, "ladder-reboot-failed", $"logind did not reboot: {ex.Message}; it is not asked again for this incident");
                }

                return step.Action;
            case LadderAction.HardReset:
                if (await RefusedAsync(next, "reboot", ct).ConfigureAwait(false))
                {
                    RefusedTooLong(current, next, now, "hard reset");
                    return LadderAction.Wait;
                }

                if (!Save(next))
                {
                    return LadderAction.Wait;
                }

                Report(step);
                try
                {
                    await _machine.HardResetAsync(_o.HardReset.Command, _o.HardReset.Timeout, ct).ConfigureAwait(false);
                }
                catch (LadderActionException ex)
                {
                    Event(next, "ladder-hard-reset-failed", $"the hard-reset command failed: {ex.Message}; it is not run again for this incident");
                }

                return step.Action;
            case LadderAction.RestartUnit:
                if (!Save(next))
                {
                    return LadderAction.Wait; // nothing done unless it is stored (an agent restarted would do it again)
                }

                Report(step);
                try
                {
                    await _machine.RestartUnitAsync(next.Unit!, ct).ConfigureAwait(false);
                    Save(IncidentLadder.Restarted(next, _time.GetUtcNow()));
                }
                catch (LadderActionException ex)
                {
                    Save(IncidentLadder.Failed(next, _time.GetUtcNow()));
                    Event(next, "ladder-restart-failed", $"could not restart {next.Unit}: {ex.Message}; tried again in {_o.Restart.Cooldown.TotalSeconds:0}s");
                }

                return step.Action;
            case LadderAction.Drain:
                if (!Save(next))
                {
                    return LadderAction.Wait;
                }

                Report(step);
                var outcome = await _drainer.DrainAsync(next.Id, ct).ConfigureAwait(false);
                var after = IncidentLadder.AfterDrain(_incident ?? next, outcome.End, outcome.Message, _time.GetUtcNow(), _o);
                if (after.Action == LadderAction.End)
                {
                    await EndAsync(after, ct).ConfigureAwait(false);
                }
                else
                {
                    Save(after.Next);
                    Report(after);
                    if (after.Next.Rung != next.Rung)
                    {
                        await MarkAsync(after.Next, ct).ConfigureAwait(false);
                    }
                }

                return step.Action;
            case LadderAction.Uncordon:
                if (_healthySaid != next.Id)
                {
                    Report(step); // once, before the first try: a refused uncordon is tried again every tick
                    _healthySaid = next.Id;
                }

                UncordonDecision decision;
                try
                {
                    decision = await _drainer.UncordonAsync(next.Id, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested && (ex is RemediationRefusedException || KubeClient.IsApiFailure(ex)))
                {
                    Save(next);
                    var why = ex is RemediationRefusedException ? ex.Message : _client.Why(ex);
                    if (why != _lastRefusal)
                    {
                        Event(next, "ladder-uncordon-waiting", $"healthy, but the uncordon could not be done yet: {why}; tried again every {_o.Interval.TotalSeconds:0}s");
                        _lastRefusal = why;
                    }

                    return LadderAction.Wait;
                }

                await EndAsync(IncidentLadder.End(next, _time.GetUtcNow(), decision switch
                {
                    UncordonDecision.Uncordon => "recovered: uncordoned",
                    UncordonDecision.LeaveCordoned => "recovered: left cordoned (it was unschedulable before the incident)",
                    UncordonDecision.AlreadyUncordoned => "recovered: someone uncordoned it already",
                    _ => "recovered: our mark was no longer on the Node; left as it is",
                }), ct).ConfigureAwait(false);
                return step.Action;
            case LadderAction.End:
                await EndAsync(step, ct).ConfigureAwait(false);
                return step.Action;
            default:
                var before = _incident?.Rung;
                Save(next);
                Report(step);
                if (before != next.Rung)
                {
                    await MarkAsync(next, ct).ConfigureAwait(false);
                }

                return step.Action;
        }
    }

    // The incident ends: our mark goes (an admin's uncordon is never undone; an admin's cancel at the coordinator
    // leaves the node as it is), the lease is given back, the drain's record cleared; the incident's record stays with
    // its end, so the next incident waits the ladder's Cooldown.
    private async Task EndAsync(LadderStep end, CancellationToken ct)
    {
        var i = end.Next;
        if (!_gate.HasEnded(i.Id) && i.Rung != Rung.Restart && i.End?.StartsWith("recovered", StringComparison.Ordinal) != true)
        {
            try
            {
                await _drainer.UncordonAsync(i.Id, ct).ConfigureAwait(false); // our mark only: it decides (NotOurs / AlreadyUncordoned)
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && (ex is RemediationRefusedException || KubeClient.IsApiFailure(ex)))
            {
                Event(i, "ladder-mark-left", $"our mark could not be removed ({(ex is RemediationRefusedException ? ex.Message : _client.Why(ex))}); the next incident records the Node as it is then");
            }
        }

        await _gate.ReleaseAsync(i.Id, ct).ConfigureAwait(false);
        DrainRecord.Clear(_stateDirectory);
        Save(i);
        Report(end);
        _lastRefusal = null;
    }

    // The rung into our mark on the Node (best effort: the incident goes on without it; a failure is said).
    private async Task MarkAsync(Incident i, CancellationToken ct)
    {
        if (i.Rung == Rung.Restart)
        {
            return;
        }

        try
        {
            await _drainer.MarkStepAsync(i.Id, IncidentLadder.Name(i.Rung), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
        {
            Log.MarkFailed(_logger, IncidentLadder.Name(i.Rung), NodeName, _client.Why(ex));
        }
    }

    // A reboot or hard reset the gate keeps refusing (Alertmanager, the pool's windows) is stalled past the rung's timeout.
    private void RefusedTooLong(Incident current, Incident next, DateTimeOffset now, string what) =>
        WaitOrStall(current with { Cordoned = next.Cordoned }, RungTimeout(current.Rung), now, "refused",
            $"the {what} was refused for {RungTimeout(current.Rung).TotalMinutes:0} min ({_lastRefusal}): the node stays cordoned, the step is asked again every {_o.Interval.TotalSeconds:0}s; an admin decides");

    private async Task<bool> RefusedAsync(Incident i, string step, CancellationToken ct)
    {
        var refused = await _gate.RefusesAsync(i.Id, step, ct).ConfigureAwait(false);
        if (refused is not null && refused != _lastRefusal)
        {
            Event(i, "ladder-refused", $"the {step} step is refused: {refused}; waiting");
        }

        _lastRefusal = refused;
        return refused is not null;
    }

    // While an incident is open past its restart rung, the lease is renewed whatever the ladder is doing.
    private async Task RenewLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_o.RenewInterval, _time);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            await RenewAsync(ct).ConfigureAwait(false); // the lease first: a slow look for a hold must not delay it
            try
            {
                await ReportHoldAsync(_time.GetUtcNow(), ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && ex is not OutOfMemoryException)
            {
                // Only the display of holds failed: the renewal loop goes on (its end would stop the agent mid-drain).
                _state.SetCheck(HoldCheck, CheckState.Unknown, ConditionFamilies.Bound($"cannot tell: {ex.GetType().Name}: {ex.Message}"));
            }
        }
    }

    /// <summary>Renews the lease of the open incident (none, or at its restart rung: nothing to renew); returns the gate's refusal.</summary>
    public async Task<string?> RenewAsync(CancellationToken ct)
    {
        string id, rung;
        if (_incident is { Ended: null, Rung: not Rung.Restart } open)
        {
            (id, rung) = (open.Id, IncidentLadder.Name(open.Rung));
        }
        else if (_unreadable is not null && await _gate.HeldIncidentAsync(ct).ConfigureAwait(false) is { } held)
        {
            // The saved incident cannot be read, but a lease is held: the node may be cordoned by it, so its place is
            // kept (renewed, never taken) until an admin removes the record and the next incident or the expiry frees it.
            (id, rung) = (held, "unknown");
        }
        else
        {
            return null;
        }

        var i = _incident is { } known && known.Id == id ? known : null;
        string? refused;
        try
        {
            // Named for the rung, so `agentctl remediation status` shows where the incident is (never a gated step name).
            // Only a lease held for this incident is renewed, never one taken: not before the cordon, not after an
            // unplanned reboot with none, not after EndAsync gave it back (the gate looks under its own lock).
            refused = await _gate.RenewAsync(id, "renew-" + rung, ct).ConfigureAwait(false);
            if (refused == IRemediationGate.NothingHeld)
            {
                return null;
            }
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            refused = $"{ex.GetType().Name}: {ex.Message}";
        }

        if (refused != _lastRenewal)
        {
            if (refused is null)
            {
                Log.Renewed(_logger, id);
            }
            else
            {
                Event(i, "ladder-lease-refused", $"the lease of incident {id} could not be renewed: {refused}; no write acts until it is held again");
            }

            _lastRenewal = refused;
        }

        return refused;
    }

    private TriggerHit? Triggered(DateTimeOffset now)
    {
        var last = _stuck.Last;
        TimeSpan? stuckFor = now - last.At > _stuckFresh ? null
            : last.Stuck.Where(s => s.Process.Mount is not null).Select(s => (TimeSpan?)s.For).Max();
        var view = new TriggerView(
            now,
            stuckFor,
            FailingSince(KubeletCheck.Unit, KubeletCheck.Healthz),
            UnitRestarted("kubelet"),
            FailingSince(CriRuntimeCheck.RuntimeCheckName(_cri), CriRuntimeCheck.UnitCheckName(_cri)),
            _o.Triggers.RebootRequired.Enabled && File.Exists(_o.Triggers.RebootRequired.Path));
        return LadderTriggerJudge.Evaluate(view, _o.Triggers, _kubeletUnit, _cri.Unit);
    }

    private DateTimeOffset? FailingSince(params string[] checks) => checks.Select(_state.GetCheck)
        .Where(c => c is { State: CheckState.Failing })
        .Select(c => (DateTimeOffset?)c!.Since.ToDateTimeOffset())
        .Min();

    // The guarded restart's own record (RemediationService): when it last restarted the unit.
    private DateTimeOffset? UnitRestarted(string name)
    {
        var path = Path.Combine(_stateDirectory, $"node-agent.remediation-{name}");
        try
        {
            return File.Exists(path) && DateTimeOffset.TryParse(BoundedFile.ReadText("the guarded restart's record", path, 256).Trim(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t) ? t : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Log.RecordFailed(_logger, path, ex.Message); // read as "no restart": the ladder restarts the unit itself
            return null;
        }
    }

    private bool Healthy(DateTimeOffset now)
    {
        var checks = new[] { KubeletCheck.Unit, KubeletCheck.Healthz, CriRuntimeCheck.RuntimeCheckName(_cri), CriRuntimeCheck.UnitCheckName(_cri), StuckProcessCheck.Check }.Concat(_o.Recover.Checks);
        if (checks.Select(_state.GetCheck).Any(c => c is { State: CheckState.Failing }))
        {
            return false;
        }

        // The admin's Recover:Checks are green only once reported by this agent (since it started: AgentState is this
        // process's): a check not run yet, or a name mistyped, is never read as green.
        if (_o.Recover.Checks.Any(name => _state.GetCheck(name) is null))
        {
            return false;
        }

        var last = _stuck.Last;
        return now - last.At > _stuckFresh || !last.Stuck.Any(s => s.Process.Mount is not null);
    }

    private async Task<LadderView> ViewAsync(Incident i, DateTimeOffset now, CancellationToken ct)
    {
        bool? ours = null;
        var ready = false;
        if (i.Rung != Rung.Restart)
        {
            try
            {
                using var cts = _client.Deadline(ct);
                var node = await _client.Api.GetAsync("/api/v1/nodes/" + Uri.EscapeDataString(NodeName), KubeJson.Default.KubeNode, cts.Token).ConfigureAwait(false);
                ours = CordonMark.Read(node.Metadata?.Annotations)?.Incident == i.Id && node.Spec?.Unschedulable == true;
                ready = node.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
            {
                Log.NodeUnreadable(_logger, NodeName, _client.Why(ex)); // unknown: nothing ends, nothing is healthy
            }
        }

        return new LadderView(now, _machine.BootId(), Healthy(now), ready, ours, i.Unit == _kubeletUnit ? UnitRestarted("kubelet") : null, _gate.HasEnded(i.Id));
    }

    // A hold stops new incidents, and an open one's reboot, hard reset and uncordon: the Node's label or annotation, or
    // puppet's lock file. The Node unreadable holds too.
    private async Task<string?> HeldAsync(CancellationToken ct) => (await LookForHoldAsync(ct).ConfigureAwait(false)).Hold;

    private async Task<(string? Hold, bool Unreadable)> LookForHoldAsync(CancellationToken ct)
    {
        var lockFile = _o.Holds.LockFiles.FirstOrDefault(File.Exists);
        if (lockFile is not null)
        {
            return (LadderTriggerJudge.Held(null, null, _o.Holds.Key, lockFile), false);
        }

        try
        {
            using var cts = _client.Deadline(ct);
            var node = await _client.Api.GetAsync("/api/v1/nodes/" + Uri.EscapeDataString(NodeName), KubeJson.Default.KubeNode, cts.Token).ConfigureAwait(false);
            return (LadderTriggerJudge.Held(node.Metadata?.Labels, node.Metadata?.Annotations, _o.Holds.Key, null), false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
        {
            return ($"the Node cannot be read to look for a hold ({_client.Why(ex)})", true);
        }
    }

    private Incident? LoadOnce()
    {
        if (!_loaded)
        {
            _loaded = true;
            _incident = Incident.Load(_stateDirectory, out var problem);
            problem ??= _incident?.Invalid();
            if (problem is not null)
            {
                _incident = null;
            }
            else if (_incident is { Ended: null, HealthySince: not null } resumed)
            {
                // Green is counted by this process only: the agent's downtime (and checks not reported yet) is no health.
                _incident = resumed with { HealthySince = null };
            }

            _saved = _incident is not null;
            if (problem is not null)
            {
                // Said once, and held: an incident that cannot be read may be open (cordoned, its reboot asked, its lease
                // held): no incident opens and nothing is undone until an admin removes the file; stalled, so the alert fires.
                _unreadable = problem;
                Open.Set(1);
                Stalled.Set(1);
                Log.RecordFailed(_logger, Incident.PathIn(_stateDirectory), problem);
                _state.AddEvent("ladder-record-unreadable", ConditionFamilies.Bound($"the saved incident cannot be read ({problem}): no incident opens until an admin looks at the node and removes {Incident.PathIn(_stateDirectory)}"), new Dictionary<string, string> { ["node"] = NodeName });
            }
            else if (_incident is { Ended: null } i)
            {
                Log.Resumed(_logger, i.Id, IncidentLadder.Name(i.Rung));
            }
        }

        return _incident;
    }

    private bool Save(Incident i)
    {
        var open = i.Ended is null;
        Open.Set(open ? 1 : 0);
        Stalled.Set((open && i.Stalled is not null) || _failedTicks >= FailedTicksStalled ? 1 : 0);
        Started.Set(open ? i.Started.ToUnixTimeSeconds() : 0);
        if (i == _incident && _saved)
        {
            return true; // unchanged since it was read or written: no fsync per tick
        }

        try
        {
            i.Save(_stateDirectory);
            _incident = i;
            _saved = true;
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _incident = i;
            _saved = false;
            Log.RecordFailed(_logger, Incident.PathIn(_stateDirectory), ex.Message);
            return false;
        }
    }

    private void Report(LadderStep step)
    {
        if (step.EventKind is { } kind)
        {
            Event(step.Next, kind, step.Message ?? kind);
        }
    }

    private static readonly HashSet<string> Normal = new(StringComparer.Ordinal) { "ladder-healthy", "ladder-rebooted" };

    private void Event(Incident? i, string kind, string message)
    {
        var bounded = ConditionFamilies.Bound(message);
        Log.Step(_logger, kind, NodeName, i?.Id ?? "-", bounded);
        var details = new Dictionary<string, string> { ["node"] = NodeName };
        if (i is not null)
        {
            details["incident"] = i.Id;
            details["rung"] = IncidentLadder.Name(i.Rung);
        }

        if (Normal.Contains(kind) || (kind == "ladder-ended" && i?.End?.StartsWith("recovered", StringComparison.Ordinal) == true) || (kind == "ladder-ended" && i?.Rung == Rung.Restart))
        {
            details[NodeEventRecorder.NormalDetail] = "Normal";
        }

        _state.AddEvent(kind, bounded, details);
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.LadderStep, LogLevel.Warning, "ladder: {Kind} on {Node} (incident {Incident}): {Message}")]
        public static partial void Step(ILogger logger, string kind, string node, string incident, string message);

        [LoggerMessage(EventIds.LadderRecordFailed, LogLevel.Error, "ladder: the incident record {Path}: {Why}")]
        public static partial void RecordFailed(ILogger logger, string path, string why);

        [LoggerMessage(EventIds.LadderResumed, LogLevel.Information, "ladder: incident {Incident} resumed at rung {Rung}")]
        public static partial void Resumed(ILogger logger, string incident, string rung);

        [LoggerMessage(EventIds.LadderRenewed, LogLevel.Information, "ladder: the lease of incident {Incident} is renewed")]
        public static partial void Renewed(ILogger logger, string incident);

        [LoggerMessage(EventIds.LadderNodeUnreadable, LogLevel.Warning, "ladder: the Node {Node} cannot be read: {Why}")]
        public static partial void NodeUnreadable(ILogger logger, string node, string why);

        [LoggerMessage(EventIds.LadderMarkFailed, LogLevel.Warning, "ladder: the step {Step} could not be written into our mark on {Node}: {Why}; the incident goes on")]
        public static partial void MarkFailed(ILogger logger, string step, string node, string why);

        [LoggerMessage(EventIds.LadderTickFailed, LogLevel.Error, "ladder: a tick failed ({Type}): {Why}; tried again at the next ({Failed} in a row)")]
        public static partial void TickFailed(ILogger logger, string type, string why, int failed);

        [LoggerMessage(EventIds.LadderTickFailedUnexpectedly, LogLevel.Error, "ladder: a tick failed unexpectedly ({Type}); tried again at the next ({Failed} in a row)")]
        public static partial void TickFailedWith(ILogger logger, Exception exception, string type, int failed);
    }
}
