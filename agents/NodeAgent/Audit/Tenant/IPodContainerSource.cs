namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>Where the tenant audit learns which pod containers run: a container runtime (CRI, or Docker).</summary>
public interface IPodContainerSource
{
    /// <summary>How long one listing may take.</summary>
    TimeSpan Timeout { get; }

    /// <summary>The running pod containers; throws <see cref="Common.Checks.PeerUnavailableException"/> when the runtime cannot answer.</summary>
    Task<IReadOnlyList<PodContainer>> ListAsync(CancellationToken ct);
}
