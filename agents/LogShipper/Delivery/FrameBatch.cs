using System.Net.Sockets;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// The frames of one batch, in one buffer, sent with one write bounded by the I/O timeout: what both connections
/// (RELP and octet-counted TCP/TLS) do with what the sender gives them. Nothing is written until <see cref="FlushAsync"/>,
/// so an item is never half on the wire, and a burst of large messages gives its memory back after the write.
/// </summary>
internal sealed class FrameBatch
{
    private const int InitialBuffer = 64 * 1024;

    private byte[] _buffer = new byte[InitialBuffer];
    private int _length;

    public bool IsEmpty => _length == 0;

    /// <summary>Room for a frame of at most <paramref name="max"/> bytes; <see cref="Advance"/> says how much it took.</summary>
    public Span<byte> Reserve(int max)
    {
        if (_length + max > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_length + max, _buffer.Length * 2));
        }

        return _buffer.AsSpan(_length, max);
    }

    public void Advance(int written) => _length += written;

    /// <summary>
    /// Writes the batch to <paramref name="stream"/> within <paramref name="ioTimeout"/>. A receiver that takes nothing
    /// for that long, or a write that fails, is a <see cref="DeliveryException"/> (the batch is not sent again from here:
    /// the connection is broken, and its items are sent again on the next one).
    /// </summary>
    public async Task FlushAsync(Stream stream, TimeSpan ioTimeout, CancellationToken ct)
    {
        if (_length == 0)
        {
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(ioTimeout);
        try
        {
            await stream.WriteAsync(_buffer.AsMemory(0, _length), cts.Token).ConfigureAwait(false);
            await stream.FlushAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new DeliveryException(ex is OperationCanceledException ? $"the receiver took nothing for {ioTimeout.TotalSeconds:0}s" : $"write failed: {ex.Message}", ex);
        }

        _length = 0;
        if (_buffer.Length > 16 * InitialBuffer)
        {
            _buffer = new byte[InitialBuffer];
        }
    }
}
