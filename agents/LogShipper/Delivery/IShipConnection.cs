namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>A delivery connection to one receiver.</summary>
public interface IShipConnection : IAsyncDisposable
{
    /// <summary>How many sent-but-unconfirmed items may be outstanding.</summary>
    int Window { get; }

    /// <summary>With more outstanding than this, the sender waits before it sends more (a batch refills the window).</summary>
    int RefillBelow { get; }

    /// <summary>Items sent on this connection and not yet confirmed (not Done).</summary>
    int Unconfirmed { get; }

    /// <summary>Completes (faulted) when the connection breaks.</summary>
    Task Broken { get; }

    Task SendAsync(ShipItem item, CancellationToken ct);

    /// <summary>Pushes what was written out. For TCP/TLS that is the confirmation: items become Done.</summary>
    Task FlushAsync(CancellationToken ct);
}
