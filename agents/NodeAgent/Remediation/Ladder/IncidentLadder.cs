using System.Globalization;
using Toolforge.Agents.NodeAgent.Remediation.Drain;

namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>What the service does for a decision of the ladder.</summary>
public enum LadderAction
{
    Wait,
    RestartUnit,
    Drain,
    Reboot,
    HardReset,
    Uncordon,
    End,
}

/// <summary>
/// What the service saw this tick: the boot (/proc/sys/kernel/random/boot_id), whether the trouble is gone and this
/// agent's checks are green, the Node's Ready condition, whether our cordon mark of this incident is on an
/// unschedulable Node (null: the API server could not tell), when the unit was last restarted by the guarded restart,
/// and whether an admin ended the incident at the coordinator.
/// </summary>
public sealed record LadderView(
    DateTimeOffset Now,
    string BootId,
    bool Healthy,
    bool NodeReady,
    bool? CordonedByUs,
    DateTimeOffset? UnitRestartedAt = null,
    bool EndedAtCoordinator = false);

/// <summary>The decision: the action, the incident as it is to be saved before the action, and an event to report.</summary>
public sealed record LadderStep(LadderAction Action, Incident Next, string? EventKind = null, string? Message = null);

/// <summary>
/// The incident ladder's deciding core: pure (no I/O, the time comes in the view), so each rung's rules are tested
/// with a fake clock. The service around it (<see cref="LadderService"/>) saves <see cref="LadderStep.Next"/>
/// durably before acting, so an action is never repeated after a restart that the record says was already asked
/// for (the reboot and the hard reset: at most once per incident).
/// </summary>
public static class IncidentLadder
{
    /// <summary>Whether a new incident may open: none before, or the last one ended Cooldown ago. An open one is resumed instead.</summary>
    public static bool MayOpen(Incident? last, DateTimeOffset now, LadderOptions o) =>
        last is null || (last.Ended is { } e && now - e >= o.Cooldown);

    public static Incident Open(string id, TriggerHit hit, DateTimeOffset now, string bootId) =>
        new(id, hit.Name, hit.Unit, hit.FirstRung, now, now, bootId);

    /// <summary>An id for the coordinator (1-64 of A-Za-z0-9._:-): the node's trigger and the minute it opened.</summary>
    public static string NewId(string trigger, DateTimeOffset now) =>
        $"{trigger}-{now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";

    public static LadderStep Decide(Incident incident, LadderView v, LadderOptions o)
    {
        var now = v.Now;
        var i = v.CordonedByUs == true && !incident.Cordoned ? incident with { Cordoned = true } : incident;
        if (v.EndedAtCoordinator)
        {
            return End(i, now, "ended by an admin at the coordinator (agentctl remediation cancel); the node is left as it is");
        }

        // Our cordon was seen and is gone now: an admin uncordoned the node (or removed our mark): the incident ends.
        if (i.Cordoned && v.CordonedByUs == false && i.Rung != Rung.Restart)
        {
            return End(i, now, "the node was uncordoned (or our mark removed) by someone else: the incident ends and it is not cordoned again");
        }

        // Whoever rebooted the machine (we, the hard reset, an admin, a crash), past the drain there is nothing left to do but recover.
        if (i.Rung is Rung.Drain or Rung.Reboot or Rung.HardReset && !BootIdentity.SameBoot(i.BootId, v.BootId))
        {
            var how = i.RebootAsked || i.HardResetRun ? "back from the reboot" : "the machine was rebooted (not by this incident)";
            return new LadderStep(LadderAction.Wait, Enter(i, Rung.Recover, now), "ladder-rebooted", $"{how}: waiting for Ready and green for {Minutes(o.Recover.HealthyFor)} before the uncordon");
        }

        return i.Rung switch
        {
            Rung.Restart => Restart(i, v, o),
            Rung.Drain => DrainRung(i, now, o),
            // Never a reboot nor a hard reset unless our cordon of this incident is seen now (the API unreadable: wait).
            Rung.Reboot when !i.RebootAsked && v.CordonedByUs != true => NotSeenCordoned(i, now, o.Reboot.Timeout),
            Rung.HardReset when !i.HardResetRun && v.CordonedByUs != true => NotSeenCordoned(i, now, o.HardReset.Timeout),
            Rung.Reboot => Reboot(i, now, o),
            Rung.HardReset => HardReset(i, now, o),
            _ => Recover(i, v, o),
        };
    }

    /// <summary>The unit's restart was done (job queued): its Timeout runs from now.</summary>
    public static Incident Restarted(Incident i, DateTimeOffset now) => i with { LastAttempt = now, RungStarted = now, Acted = true };

    /// <summary>A failed action of the current rung: tried again after the rung's cooldown.</summary>
    public static Incident Failed(Incident i, DateTimeOffset now) => i with { LastAttempt = now };

    /// <summary>How the drain ended decides the next rung.</summary>
    public static LadderStep AfterDrain(Incident i, DrainEnd end, string message, DateTimeOffset now, LadderOptions o)
    {
        switch (end)
        {
            case DrainEnd.Drained or DrainEnd.Stuck:
                var next = o.Reboot.Enabled ? Rung.Reboot : o.HardReset.Command.Count > 0 ? Rung.HardReset : Rung.Recover;
                return new LadderStep(LadderAction.Wait, Enter(i with { Cordoned = true }, next, now), "ladder-escalated",
                    $"{(end == DrainEnd.Stuck ? "drain stuck (only a reboot helps)" : "drained")}: next rung {Name(next)}");
            case DrainEnd.Cancelled:
                return End(i, now, $"the drain was cancelled: {message}");
            case DrainEnd.Disabled:
                return End(i, now, "NodeAgent:Remediation:Drain:Enabled is false: nothing more this ladder may do");
            default:
                // Blocked (never forced), Slow, Failed, Refused: tried again after the rung's cooldown; the Drainer said why.
                return new LadderStep(LadderAction.Wait, i with { LastAttempt = now });
        }
    }

    public static LadderStep End(Incident i, DateTimeOffset now, string how) =>
        new(LadderAction.End, i with { Ended = now, End = how }, "ladder-ended", how);

    private static LadderStep Restart(Incident i, LadderView v, LadderOptions o)
    {
        var now = v.Now;
        if (v.Healthy)
        {
            return End(i, now, i.Acted ? $"{i.Unit} is healthy again after its restart" : "healthy again before any action");
        }

        if (now - i.RungStarted >= o.Restart.Timeout)
        {
            // The boot it escalates in: a reboot during the restart rung is not "back from the reboot" past the drain.
            return new LadderStep(LadderAction.Wait, Enter(i with { BootId = v.BootId }, Rung.Drain, now), "ladder-escalated",
                $"{i.Unit} still unhealthy {Minutes(o.Restart.Timeout)} after {(i.Acted ? "its restart" : "the restart was first tried")}: next rung drain");
        }

        if (i.Acted)
        {
            return Wait(i);
        }

        // The guarded restart (NodeAgent:Remediation:Kubelet) already restarted it within the rung: not again, its time counts.
        if (v.UnitRestartedAt is { } r && r >= i.Started - o.Restart.Timeout && now - r < o.Restart.Timeout)
        {
            return Wait(i with { Acted = true, LastAttempt = r, RungStarted = r });
        }

        return i.LastAttempt is null || now - i.LastAttempt >= o.Restart.Cooldown
            ? new LadderStep(LadderAction.RestartUnit, i with { LastAttempt = now }, "ladder-restart", $"restarting {i.Unit} ({i.Trigger})")
            : Wait(i);
    }

    private static LadderStep DrainRung(Incident i, DateTimeOffset now, LadderOptions o)
    {
        if (now - i.RungStarted >= o.Drain.Timeout && i.Stalled is null)
        {
            return new LadderStep(LadderAction.Wait, i with { Stalled = "drain" }, "ladder-stalled",
                $"not drained within {Minutes(o.Drain.Timeout)} (see the drain's events): the node stays cordoned, the drain is tried again every {Minutes(o.Drain.Cooldown)}; an admin decides (agentctl remediation cancel)");
        }

        return i.LastAttempt is null || now - i.LastAttempt >= o.Drain.Cooldown
            ? new LadderStep(LadderAction.Drain, i with { LastAttempt = now })
            : Wait(i);
    }

    private static LadderStep Reboot(Incident i, DateTimeOffset now, LadderOptions o)
    {
        if (!i.RebootAsked)
        {
            // Saved with RebootAsked before logind is asked: a restart after this never asks again.
            return new LadderStep(LadderAction.Reboot, i with { RebootAsked = true, LastAttempt = now, RungStarted = now, Stalled = null }, "ladder-reboot", "rebooting through logind");
        }

        if (now - i.RungStarted < o.Reboot.Timeout)
        {
            return Wait(i);
        }

        if (o.HardReset.Command.Count > 0 && !i.HardResetRun)
        {
            return new LadderStep(LadderAction.Wait, Enter(i, Rung.HardReset, now), "ladder-escalated", $"the reboot asked {Minutes(o.Reboot.Timeout)} ago did not happen: next rung hard-reset");
        }

        return Stall(i, "reboot", $"the reboot asked {Minutes(o.Reboot.Timeout)} ago did not happen and it is asked only once per incident{(o.HardReset.Command.Count > 0 ? " (the hard reset was run already)" : " (no HardReset:Command)")}: the node stays cordoned; an admin decides");
    }

    private static LadderStep HardReset(Incident i, DateTimeOffset now, LadderOptions o)
    {
        if (!i.HardResetRun)
        {
            return new LadderStep(LadderAction.HardReset, i with { HardResetRun = true, LastAttempt = now, RungStarted = now, Stalled = null }, "ladder-hard-reset", "running the admin's hard-reset command");
        }

        return now - i.RungStarted < o.HardReset.Timeout
            ? Wait(i)
            : Stall(i, "hard-reset", $"the hard reset run {Minutes(o.HardReset.Timeout)} ago did not reboot the machine: the node stays cordoned; an admin decides");
    }

    private static LadderStep Recover(Incident i, LadderView v, LadderOptions o)
    {
        var now = v.Now;
        if (!(v.NodeReady && v.Healthy))
        {
            var broken = i with { HealthySince = null };
            return now - i.RungStarted >= o.Recover.Timeout
                ? Stall(broken, "recover", $"not Ready and green for {Minutes(o.Recover.HealthyFor)} within {Minutes(o.Recover.Timeout)} of the reboot: the node stays cordoned; an admin decides")
                : Wait(broken);
        }

        var since = i.HealthySince ?? now;
        return now - since >= o.Recover.HealthyFor
            ? new LadderStep(LadderAction.Uncordon, i with { HealthySince = since }, "ladder-healthy", $"Ready and green for {Minutes(now - since)}: giving the node back")
            : Wait(i with { HealthySince = since });
    }

    // Our cordon not seen (the Node unreadable, or not cordoned by us): waits; past the rung's timeout stalled for an admin.
    private static LadderStep NotSeenCordoned(Incident i, DateTimeOffset now, TimeSpan timeout) =>
        now - i.RungStarted >= timeout
            ? Stall(i, "not-cordoned", $"our cordon of this incident was not seen on the Node for {Minutes(timeout)} (the API server unreadable?): no reboot without it; an admin decides")
            : Wait(i);

    private static Incident Enter(Incident i, Rung rung, DateTimeOffset now) =>
        i with { Rung = rung, RungStarted = now, LastAttempt = null, Acted = false, Stalled = null, HealthySince = null };

    private static LadderStep Stall(Incident i, string rung, string why) =>
        i.Stalled == rung ? Wait(i) : new LadderStep(LadderAction.Wait, i with { Stalled = rung }, "ladder-stalled", why);

    private static LadderStep Wait(Incident i) => new(LadderAction.Wait, i);

    public static string Name(Rung r) => r switch
    {
        Rung.Restart => "restart",
        Rung.Drain => "drain",
        Rung.Reboot => "reboot",
        Rung.HardReset => "hard-reset",
        _ => "recover",
    };

    private static string Minutes(TimeSpan t) => t.TotalMinutes >= 1
        ? $"{t.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture)} min"
        : $"{t.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s";
}
