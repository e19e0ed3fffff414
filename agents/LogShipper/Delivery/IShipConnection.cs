using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>A delivery connection to one receiver.</summary>
public interface IShipConnection : IAsyncDisposable
{
    /// <summary>How many sent-but-unconfirmed items may be outstanding.</summary>
    int Window { get; }

    /// <summary>With more outstanding than this, the sender waits before it sends more (a batch refills the window).</summary>
    int RefillBelow { get; }

    /// <summary>Completes (faulted) when the connection breaks.</summary>
    Task Broken { get; }

    Task SendAsync(ShipItem item, CancellationToken ct);

    /// <summary>Pushes what was written out. For TCP/TLS that is the confirmation: items become Done.</summary>
    Task FlushAsync(CancellationToken ct);
}
