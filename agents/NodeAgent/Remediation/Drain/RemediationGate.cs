namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// Asked before every write the drain makes to the cluster (the cordon, each eviction, the uncordon): null lets it
/// act, a reason stops it. In the daemon it is the coordinator's per-pool lease (<see cref="CoordinatorLeaseGate"/>): a
/// holder whose lease expired, or whose fencing token is stale, does not write.
/// </summary>
public interface IRemediationGate
{
    ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct);

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
