using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Toolforge.Agents.Common.Syslog.Relp;
using Toolforge.Agents.LogShipper.Delivery;

namespace Toolforge.Agents.LogShipper.Delivery.Relp;

/// <summary>
/// RELP (rsyslog's reliable event logging protocol): "TXNR COMMAND DATALEN DATA\n" frames; open/rsp negotiation,
/// syslog frames pipelined up to the window, each acknowledged by "TXNR rsp 6 200 OK"; serverclose ends the session.
/// An item is Done only when its acknowledgement arrives; on a new connection every unacknowledged item is sent again.
/// Frames are written into one buffer and sent with one write per batch; acknowledgements are read from a buffer as
/// they come (no object per frame), and the sender is woken once a burst of them has brought the outstanding frames
/// down to half the window, which is sized from the acknowledgement rate (<see cref="RelpWindow"/>).
/// </summary>
public sealed partial class RelpConnection : IShipConnection
{
    private static readonly byte[] QuickAckOn = [1, 0, 0, 0];

    private readonly TcpClient _client;
    private readonly Stream _stream;
    private readonly Dictionary<long, ShipItem> _inflight = [];
    private readonly TaskCompletionSource _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action _onAck;
    private readonly TimeSpan _ioTimeout;
    private readonly RelpWindow _window;
    private readonly RelpFrameReader _reader;
    private readonly ILogger _logger;
    private readonly FrameBatch _batch = new();
    private long _txnr = 1;
    private long _lastAck = Environment.TickCount64;
    private long _lastSent;
    private bool _quickAck = OperatingSystem.IsLinux();
    private bool _closed;

    // One frame of each flush is timed from its write to its acknowledgement (the window's round trip).
    private long _sampleTxnr = -1;
    private long _sampleSent;

    private RelpConnection(TcpClient client, Stream stream, RelpWindow window, TimeSpan ioTimeout, Action onAck, ILogger logger)
    {
        _logger = logger;
        _client = client;
        _stream = stream;
        _window = window;
        _ioTimeout = ioTimeout;
        _onAck = onAck;
        _reader = new RelpFrameReader(stream, QuickAck);
    }

    public int Window => _window.Size;

    /// <summary>The sender refills once no more than half the window is outstanding: one write per half window.</summary>
    public int RefillBelow => _window.Size / 2;

    public Task Broken => _broken.Task;

    public int Unconfirmed
    {
        get
        {
            lock (_inflight)
            {
                return _inflight.Count;
            }
        }
    }

    public static async Task<RelpConnection> ConnectAsync(Destination d, DestinationOptions o, RelpWindow window, TimeSpan connectTimeout, TimeSpan ioTimeout, Action onAck, ILogger logger, CancellationToken ct)
    {
        var (client, stream) = await Streams.ConnectAsync(d, o, connectTimeout, ct).ConfigureAwait(false);
        var c = new RelpConnection(client, stream, window, ioTimeout, onAck, logger);
        try
        {
            await c.OpenAsync(d, connectTimeout, ct).ConfigureAwait(false);
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        _ = c.ReadLoopAsync();
        _ = c.WatchdogAsync();
        return c;
    }

    private async Task OpenAsync(Destination d, TimeSpan timeout, CancellationToken ct)
    {
        Append(_txnr++, "open"u8, "relp_version=0\nrelp_software=toolforge-log-shipper\ncommands=syslog"u8);
        await FlushAsync(ct).ConfigureAwait(false);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        string command, data;
        try
        {
            if (!await _reader.NextAsync(cts.Token).ConfigureAwait(false))
            {
                throw new DeliveryException($"{d}: the receiver closed the connection instead of answering RELP open");
            }

            (command, data) = (_reader.CommandText, _reader.DataText);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DeliveryException($"{d}: no answer to RELP open within {timeout.TotalSeconds:0}s");
        }
        catch (Exception ex) when (ex is FormatException or IOException or SocketException)
        {
            throw new DeliveryException($"{d}: not a RELP answer to open: {ex.Message}", ex);
        }

        if (command != "rsp" || !data.StartsWith("200", StringComparison.Ordinal))
        {
            throw new DeliveryException($"{d}: RELP open refused: {command} {data}");
        }

        if (!data.Contains("commands=", StringComparison.Ordinal) || !data.Contains("syslog", StringComparison.Ordinal))
        {
            throw new DeliveryException($"{d}: the RELP server does not offer the syslog command: {data}");
        }
    }

    /// <summary>Adds the item's frame to the batch (no I/O: <see cref="FlushAsync"/> writes the batch).</summary>
    public Task SendAsync(ShipItem item, CancellationToken ct)
    {
        long txnr;
        lock (_inflight)
        {
            txnr = _txnr++;
            if (_txnr > 999_999_999)
            {
                _txnr = 1;
            }

            if (_inflight.Count == 0)
            {
                _lastAck = Environment.TickCount64; // the acknowledgement clock starts with the first outstanding frame
            }

            _inflight[txnr] = item;
        }

        Append(txnr, "syslog"u8, item.Payload);
        _lastSent = txnr;
        return Task.CompletedTask;
    }

    private void Append(long txnr, ReadOnlySpan<byte> command, ReadOnlySpan<byte> data) =>
        _batch.Advance(RelpFrameWriter.Write(_batch.Reserve(RelpFrameWriter.Overhead(command) + data.Length), txnr, command, data));

    /// <summary>Writes the batch in one write, bounded by the I/O timeout.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        if (_batch.IsEmpty)
        {
            return;
        }

        if (Volatile.Read(ref _sampleTxnr) < 0 && _lastSent > 0)
        {
            _sampleSent = System.Diagnostics.Stopwatch.GetTimestamp();
            Volatile.Write(ref _sampleTxnr, _lastSent); // read by the acknowledgement loop
        }

        try
        {
            await _batch.FlushAsync(_stream, _ioTimeout, ct).ConfigureAwait(false);
        }
        catch (DeliveryException ex)
        {
            Break(ex);
            throw;
        }
    }

    // Acknowledge at once what the receiver sends (Linux): its next acknowledgement then never waits for our delayed ACK
    // (rsyslog's small answers are held back by Nagle until the previous one is acknowledged), which would otherwise
    // pace a half-window refill at one burst per delayed-ACK timeout.
    private void QuickAck()
    {
        if (!_quickAck)
        {
            return;
        }

        try
        {
            _client.Client.SetRawSocketOption(6 /* IPPROTO_TCP */, 12 /* TCP_QUICKACK */, QuickAckOn);
        }
        catch (SocketException ex)
        {
            _quickAck = false; // not this kernel's option: acknowledgements are slower, and said so once
            Log.QuickAckUnavailable(_logger, ex.Message);
        }
        catch (ObjectDisposedException)
        {
            // the connection is closing: the acknowledgement loop sees that and reports it
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (await _reader.NextAsync(CancellationToken.None).ConfigureAwait(false))
            {
                var acked = 0;
                do
                {
                    if (!Handle(ref acked))
                    {
                        return;
                    }
                }
                while (_reader.TryNextBuffered());

                if (acked > 0)
                {
                    _lastAck = Environment.TickCount64;
                    _window.Acked(acked);
                    if (Unconfirmed <= RefillBelow)
                    {
                        _onAck(); // one wake for the whole burst, once there is room for a batch
                    }
                }
            }

            Break(new DeliveryException("the receiver closed the connection"));
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or FormatException or InvalidOperationException)
        {
            Break(new DeliveryException($"connection lost: {ex.Message}", ex));
        }
    }

    // One frame from the receiver; false when the connection is done.
    private bool Handle(ref int acked)
    {
        if (_reader.Command.SequenceEqual("serverclose"u8))
        {
            Break(new DeliveryException("the receiver sent serverclose"));
            return false;
        }

        if (!_reader.Command.SequenceEqual("rsp"u8))
        {
            return true;
        }

        var txnr = _reader.Txnr;
        var ok = _reader.Data.StartsWith("200"u8);
        lock (_inflight)
        {
            // Under the lock that DisposeAsync takes: once the connection is disposed it never touches an item again
            // (the sender reuses delivered items).
            if (_closed || !_inflight.Remove(txnr, out var item))
            {
                return !_closed;
            }

            if (ok)
            {
                item.Done = true;
            }
            else
            {
                item.Attempts++;
            }
        }

        if (txnr == Volatile.Read(ref _sampleTxnr))
        {
            _window.RoundTrip(System.Diagnostics.Stopwatch.GetElapsedTime(_sampleSent));
            Volatile.Write(ref _sampleTxnr, -1);
        }

        if (!ok)
        {
            Break(new DeliveryException($"the receiver refused a message: {_reader.DataText}"));
            return false;
        }

        acked++;
        return true;
    }

    // Acknowledgements that stop coming while frames are outstanding mean a hung receiver.
    private async Task WatchdogAsync()
    {
        while (!_broken.Task.IsCompleted)
        {
            await Task.WhenAny(_broken.Task, Task.Delay(1000)).ConfigureAwait(false);
            if (Unconfirmed > 0 && Environment.TickCount64 - _lastAck > _ioTimeout.TotalMilliseconds)
            {
                Break(new DeliveryException($"no acknowledgement for {_ioTimeout.TotalSeconds:0}s with {Unconfirmed} frame(s) outstanding"));
            }
        }
    }

    private void Break(Exception ex)
    {
        if (_broken.TrySetException(ex))
        {
            _onAck(); // wake the sender
        }
    }

    public async ValueTask DisposeAsync()
    {
        Break(new DeliveryException("closed"));
        lock (_inflight)
        {
            _closed = true;
            _inflight.Clear();
        }

        _ = _broken.Task.Exception;
        try
        {
            _client.Client.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // already closed
        }
        catch (ObjectDisposedException)
        {
            // already disposed
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _client.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(5010, LogLevel.Warning, "TCP_QUICKACK cannot be set ({Reason}): RELP acknowledgements may wait for delayed ACKs, and shipping is slower")]
        public static partial void QuickAckUnavailable(ILogger logger, string reason);
    }
}
