using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>
/// An admin's action on a pool, decided on what the store holds (a pure function, as <see cref="LeasePacer"/>):
/// pause or resume the pool or one node (no new lease while paused; leases under way go on), cancel a node's incident
/// (refused for good from now, so its agent ends it; its lease runs out at its expiry, not sooner: the holder may be
/// acting on it, out of earshot), reset a tripped storm breaker
/// (its candidates forgotten with it). Null write with a refusal when the action does not apply.
/// </summary>
public static class RemediationControl
{
    public static (string? Refusal, RemediationPoolWrite? Write) Apply(RemediationPoolRow row, RemediationAction action, string? node, string by, string reason, DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var live = row.Leases.Where(l => l.ExpiresMs > nowMs).ToList();
        switch (action)
        {
            case RemediationAction.Pause when node is null:
                return (null, new(row with { PausedBy = by, PausedReason = reason, PausedAtMs = nowMs }, [], null));
            case RemediationAction.Resume when node is null:
                return row.PausedBy.Length == 0
                    ? ($"pool {row.Pool} is not paused", null)
                    : (null, new(row with { PausedBy = string.Empty, PausedReason = string.Empty, PausedAtMs = 0 }, [], null));
            case RemediationAction.Pause:
                return (null, new(row with { Holds = [.. row.Holds.Where(h => !(h.Node == node && h.Kind == RemediationHolds.Paused)), new RemediationHoldRow(node, RemediationHolds.Paused, string.Empty, by, reason, nowMs)] }, [], null));
            case RemediationAction.Resume:
                return row.Holds.Any(h => h.Node == node && h.Kind == RemediationHolds.Paused)
                    ? (null, new(row with { Holds = row.Holds.Where(h => !(h.Node == node && h.Kind == RemediationHolds.Paused)).ToList() }, [], null))
                    : ($"{node} is not paused", null);
            case RemediationAction.Cancel when node is not null:
                if (live.FirstOrDefault(l => l.Node == node) is not { } lease)
                {
                    return ($"{node} holds no lease of pool {row.Pool}: no incident under way to cancel", null);
                }

                // The lease is kept until it expires: the holder may be acting on it now, unable to hear (cut off from
                // the coordinator, it uses what it holds until the lease would expire here); freeing the place sooner
                // would let another node in beside it. The hold refuses every request of the incident from now on.
                var holds = row.Holds.Where(h => !(h.Node == node && h.Kind == RemediationHolds.Cancelled && h.Incident == lease.Incident))
                    .Append(new RemediationHoldRow(node, RemediationHolds.Cancelled, lease.Incident, by, reason, nowMs)).ToList();
                return (null, new(row with { Holds = holds }, [], null));
            case RemediationAction.ResetBreaker when node is null:
                return row.BreakerAtMs == 0
                    ? ($"pool {row.Pool}'s storm breaker has not tripped", null)
                    : (null, new(row with { BreakerAtMs = 0, BreakerReason = string.Empty, Candidates = [] }, [], null));
            default:
                return (action switch
                {
                    RemediationAction.Cancel => "cancel takes a node, not a pool",
                    RemediationAction.ResetBreaker => "reset-breaker takes a pool, not a node",
                    _ => "action: pause, resume, cancel or reset-breaker",
                }, null);
        }
    }
}
