namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// Asked before every write the drain makes to the cluster (the cordon, each eviction, the uncordon): null lets it
/// act, a reason stops it. In the daemon it is the coordinator's per-pool lease (<see cref="CoordinatorLeaseGate"/>): a
/// holder whose lease expired, or whose fencing token is stale, does not write.
/// </summary>
public interface IRemediationGate
{
    /// <summary>
    /// The steps that act only on a real answer of the coordinator (its Alertmanager gate asked): the cordon, the reboot
    /// and the hard reset. With the coordinator unreachable they wait, even under a lease still held; the other steps
    /// (evict, mark, uncordon, renew-*) may go on under it.
    /// </summary>
    static readonly IReadOnlySet<string> AnswerRequired = new HashSet<string>(StringComparer.Ordinal) { "cordon", "reboot", "hard-reset" };

    /// <summary>What <see cref="RenewAsync"/> answers when no lease is held for the incident: nothing was asked.</summary>
    const string NothingHeld = "no lease held for this incident: nothing to renew";

    ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct);

    /// <summary>
    /// Renews the lease held for <paramref name="incident"/>, never takes one: with none held, <see cref="NothingHeld"/>
    /// and nothing asked (a renewal must not take the pool's place before the cordon, nor after the lease was given back).
    /// </summary>
    ValueTask<string?> RenewAsync(string incident, string step, CancellationToken ct) => RefusesAsync(incident, step, ct);

    /// <summary>The incident whose lease is held (kept on disk), whatever the ladder's record says; null with none.</summary>
    ValueTask<string?> HeldIncidentAsync(CancellationToken ct) => ValueTask.FromResult<string?>(null);

    /// <summary>The incident ended (uncordoned, or left as it is): whatever it held is given back.</summary>
    ValueTask ReleaseAsync(string incident, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>Whether the incident was ended from outside (an admin's cancel at the coordinator): it is not resumed.</summary>
    bool HasEnded(string incident) => false;
}

/// <summary>Every step may act: for tests of the drain itself, never registered in the daemon.</summary>
public sealed class OpenGate : IRemediationGate
{
    public ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct) => ValueTask.FromResult<string?>(null);
}

/// <summary>The gate refused a step (its message says why).</summary>
public sealed class RemediationRefusedException(string message) : Exception(message);
