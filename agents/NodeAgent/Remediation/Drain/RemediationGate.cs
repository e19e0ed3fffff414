namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// Asked before every write the drain makes to the cluster (the cordon, each eviction, the uncordon): null lets it
/// act, a reason stops it. The seam for the coordinator's per-pool lease (a later slice of issue 26): a holder whose
/// lease expired, or whose fencing token is stale, must not write; until then <see cref="OpenGate"/> always lets it.
/// </summary>
public interface IRemediationGate
{
    ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct);
}

/// <summary>No lease yet: every step may act.</summary>
public sealed class OpenGate : IRemediationGate
{
    public ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct) => ValueTask.FromResult<string?>(null);
}

/// <summary>The gate refused a step (its message says why).</summary>
public sealed class RemediationRefusedException(string message) : Exception(message);
