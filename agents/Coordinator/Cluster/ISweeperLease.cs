using Prometheus;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Cluster;

/// <summary>
/// Whether this instance judges nodes for the metrics and applies retention: <see cref="SweeperLease"/> where several
/// instances share a PostgreSQL store, <see cref="SoleInstanceLease"/> on SQLite (the one instance).
/// </summary>
public interface ISweeperLease
{
    /// <summary>1 on the instance that holds it.</summary>
    protected static readonly Gauge Held = Metrics.CreateGauge("toolforge_coordinator_sweeper_lease",
        "1 on the instance that judges nodes for the metrics and applies retention, 0 on the others.");

    /// <summary>Whether this instance holds the lease now.</summary>
    bool IsHeld { get; }

    /// <summary>A write that only commits while this instance still holds the lease (null when it does not).</summary>
    StoreOp? Fence { get; }

    /// <summary>Renews (or takes) the lease; whether this instance holds it.</summary>
    Task<bool> HoldAsync(CancellationToken ct);
}

/// <summary>The one instance of a SQLite store: it always holds the lease, and its writes need no fence.</summary>
public sealed class SoleInstanceLease : ISweeperLease
{
    public bool IsHeld => true;

    public StoreOp? Fence => new StoreBatch([]);

    public Task<bool> HoldAsync(CancellationToken ct)
    {
        ISweeperLease.Held.Set(1);
        return Task.FromResult(true);
    }
}
