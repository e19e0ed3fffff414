using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// Syslog over TCP (RFC 6587 octet counting) or TLS (RFC 5425). The protocol has no acknowledgement: an item counts
/// as delivered once written and flushed to the kernel. Only RELP guarantees that nothing is lost.
/// </summary>
public sealed class SyslogStreamConnection : IShipConnection
{
    private readonly TcpClient _client;
    private readonly Stream _stream;
    private readonly BufferedStream _buffer;
    private readonly List<ShipItem> _written = [];
    private readonly TaskCompletionSource _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _ioTimeout;

    private SyslogStreamConnection(TcpClient client, Stream stream, TimeSpan ioTimeout)
    {
        _client = client;
        _stream = stream;
        _buffer = new BufferedStream(stream, 256 * 1024);
        _ioTimeout = ioTimeout;
        _ = WatchForCloseAsync();
    }

    public int Window => 4096;

    public int RefillBelow => Window;

    public Task Broken => _broken.Task;

    public static async Task<SyslogStreamConnection> ConnectAsync(Destination d, DestinationOptions o, TimeSpan connectTimeout, TimeSpan ioTimeout, CancellationToken ct)
    {
        var (client, stream) = await Streams.ConnectAsync(d, o, connectTimeout, ct).ConfigureAwait(false);
        return new SyslogStreamConnection(client, stream, ioTimeout);
    }

    // The receiver never writes; a read that returns means it closed the connection.
    private async Task WatchForCloseAsync()
    {
        try
        {
            var b = new byte[64];
            while (await _stream.ReadAsync(b).ConfigureAwait(false) > 0)
            {
            }

            _broken.TrySetException(new DeliveryException("the receiver closed the connection"));
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException or InvalidOperationException or NotSupportedException)
        {
            _broken.TrySetException(new DeliveryException($"connection lost: {ex.Message}", ex));
        }
    }

    public async Task SendAsync(ShipItem item, CancellationToken ct)
    {
        var prefix = Encoding.ASCII.GetBytes(item.Payload!.Length.ToString(CultureInfo.InvariantCulture) + " ");
        await Io(t => _buffer.WriteAsync(prefix, t).AsTask(), ct).ConfigureAwait(false);
        await Io(t => _buffer.WriteAsync(item.Payload, t).AsTask(), ct).ConfigureAwait(false);
        _written.Add(item);
    }

    public async Task FlushAsync(CancellationToken ct)
    {
        await Io(_buffer.FlushAsync, ct).ConfigureAwait(false);
        foreach (var i in _written)
        {
            i.Done = true;
        }

        _written.Clear();
    }

    private async Task Io(Func<CancellationToken, Task> op, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_ioTimeout);
        try
        {
            await op(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            var e = new DeliveryException(ex is OperationCanceledException ? $"the receiver took nothing for {_ioTimeout.TotalSeconds:0}s" : $"write failed: {ex.Message}", ex);
            _broken.TrySetException(e);
            throw e;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _buffer.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
        {
            // the connection is already gone; unflushed items stay not Done and are sent again
        }

        _client.Dispose();
        _broken.TrySetException(new DeliveryException("closed"));
        _ = _broken.Task.Exception; // observed
    }
}
