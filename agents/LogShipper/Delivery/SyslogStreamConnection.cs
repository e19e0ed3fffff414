using System.Net.Sockets;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// Syslog over TCP (RFC 6587 octet counting) or TLS (RFC 5425). The protocol has no acknowledgement: an item counts
/// as delivered once written and flushed to the kernel. Only RELP guarantees that nothing is lost. Frames go into one
/// batch and out with one write per flush (<see cref="FrameBatch"/>, as RELP's).
/// </summary>
public sealed class SyslogStreamConnection : IShipConnection
{
    private readonly TcpClient _client;
    private readonly Stream _stream;
    private readonly FrameBatch _batch = new();
    private readonly List<ShipItem> _written = [];
    private readonly TaskCompletionSource _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _ioTimeout;

    private SyslogStreamConnection(TcpClient client, Stream stream, TimeSpan ioTimeout)
    {
        _client = client;
        _stream = stream;
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

    public int Unconfirmed => _written.Count;

    /// <summary>Adds "LENGTH SP MESSAGE" to the batch (no I/O: <see cref="FlushAsync"/> writes the batch).</summary>
    public Task SendAsync(ShipItem item, CancellationToken ct)
    {
        var payload = item.Payload;
        _batch.Advance(OctetCounting.Write(_batch.Reserve(OctetCounting.Overhead + payload.Length), payload));
        _written.Add(item);
        return Task.CompletedTask;
    }

    public async Task FlushAsync(CancellationToken ct)
    {
        try
        {
            await _batch.FlushAsync(_stream, _ioTimeout, ct).ConfigureAwait(false);
        }
        catch (DeliveryException ex)
        {
            _broken.TrySetException(ex);
            throw;
        }

        foreach (var i in _written)
        {
            i.Done = true;
        }

        _written.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        // Unflushed frames are dropped with the connection: their items are not Done and go again on the next one.
        try
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
        {
            // the connection is already gone (a TLS close_notify could not be sent); nothing was lost by it
        }

        _client.Dispose();
        _broken.TrySetException(new DeliveryException("closed"));
        _ = _broken.Task.Exception; // observed
    }
}
