using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Common.Syslog.Relp;
using Toolforge.Agents.LogShipper.Delivery;

namespace Toolforge.Agents.LogShipper.Delivery.Relp;

/// <summary>
/// RELP (rsyslog's reliable event logging protocol): "TXNR COMMAND DATALEN DATA\n" frames; open/rsp negotiation,
/// syslog frames pipelined up to the window, each acknowledged by "TXNR rsp 6 200 OK"; serverclose ends the session.
/// An item is Done only when its acknowledgement arrives; on a new connection every unacknowledged item is sent again.
/// </summary>
public sealed class RelpConnection : IShipConnection
{
    private readonly TcpClient _client;
    private readonly Stream _stream;
    private readonly BufferedStream _out;
    private readonly Dictionary<long, ShipItem> _inflight = [];
    private readonly TaskCompletionSource _broken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action _onAck;
    private readonly TimeSpan _ioTimeout;
    private long _txnr = 1;
    private DateTimeOffset _lastAck = DateTimeOffset.UtcNow;

    private RelpConnection(TcpClient client, Stream stream, int window, TimeSpan ioTimeout, Action onAck)
    {
        _client = client;
        _stream = stream;
        _out = new BufferedStream(stream, 256 * 1024);
        Window = window;
        _ioTimeout = ioTimeout;
        _onAck = onAck;
    }

    public int Window { get; }

    public Task Broken => _broken.Task;

    public int Inflight
    {
        get
        {
            lock (_inflight)
            {
                return _inflight.Count;
            }
        }
    }

    public static async Task<RelpConnection> ConnectAsync(Destination d, DestinationOptions o, int window, TimeSpan connectTimeout, TimeSpan ioTimeout, Action onAck, CancellationToken ct)
    {
        var (client, stream) = await Streams.ConnectAsync(d, o, connectTimeout, ct).ConfigureAwait(false);
        var c = new RelpConnection(client, stream, window, ioTimeout, onAck);
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
        var offers = "relp_version=0\nrelp_software=toolforge-log-shipper\ncommands=syslog";
        await WriteFrameAsync(_txnr++, "open", Encoding.ASCII.GetBytes(offers), ct).ConfigureAwait(false);
        await _out.FlushAsync(ct).ConfigureAwait(false);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var reader = new RelpFrameReader(_stream);
        RelpFrame? rsp;
        try
        {
            rsp = await reader.ReadAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DeliveryException($"{d}: no answer to RELP open within {timeout.TotalSeconds:0}s");
        }
        catch (Exception ex) when (ex is FormatException or IOException or SocketException)
        {
            throw new DeliveryException($"{d}: not a RELP answer to open: {ex.Message}", ex);
        }

        if (rsp is null || rsp.Command != "rsp" || !rsp.Data.StartsWith("200", StringComparison.Ordinal))
        {
            throw new DeliveryException($"{d}: RELP open refused: {rsp?.Command} {rsp?.Data}");
        }

        if (!rsp.Data.Contains("commands=", StringComparison.Ordinal) || !rsp.Data.Contains("syslog", StringComparison.Ordinal))
        {
            throw new DeliveryException($"{d}: the RELP server does not offer the syslog command: {rsp.Data}");
        }

        _reader = reader;
    }

    private RelpFrameReader? _reader;

    public async Task SendAsync(ShipItem item, CancellationToken ct)
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
                _lastAck = DateTimeOffset.UtcNow; // the acknowledgement clock starts with the first outstanding frame
            }

            _inflight[txnr] = item;
        }

        await WriteFrameAsync(txnr, "syslog", item.Payload!, ct).ConfigureAwait(false);
    }

    public async Task FlushAsync(CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_ioTimeout);
        try
        {
            await _out.FlushAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            Break(new DeliveryException($"write failed: {ex.Message}", ex));
            throw new DeliveryException($"write failed: {ex.Message}", ex);
        }
    }

    private async Task WriteFrameAsync(long txnr, string command, byte[] data, CancellationToken ct)
    {
        var header = RelpFrameWriter.Header(txnr, command, data.Length);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_ioTimeout);
        try
        {
            await _out.WriteAsync(header, cts.Token).ConfigureAwait(false);
            await _out.WriteAsync(data, cts.Token).ConfigureAwait(false);
            _out.WriteByte((byte)'\n');
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            var e = new DeliveryException($"write failed: {ex.Message}", ex);
            Break(e);
            throw e;
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var frame = await _reader!.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                if (frame is null)
                {
                    Break(new DeliveryException("the receiver closed the connection"));
                    return;
                }

                if (frame.Command == "serverclose")
                {
                    Break(new DeliveryException("the receiver sent serverclose"));
                    return;
                }

                if (frame.Command != "rsp")
                {
                    continue;
                }

                ShipItem? item;
                lock (_inflight)
                {
                    _inflight.Remove(frame.Txnr, out item);
                }

                if (item is null)
                {
                    continue;
                }

                _lastAck = DateTimeOffset.UtcNow;
                if (frame.Data.StartsWith("200", StringComparison.Ordinal))
                {
                    item.Done = true;
                }
                else
                {
                    item.Attempts++;
                    Break(new DeliveryException($"the receiver refused a message: {frame.Data}"));
                    return;
                }

                _onAck();
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or FormatException or InvalidOperationException)
        {
            Break(new DeliveryException($"connection lost: {ex.Message}", ex));
        }
    }

    // Acknowledgements that stop coming while frames are outstanding mean a hung receiver.
    private async Task WatchdogAsync()
    {
        while (!_broken.Task.IsCompleted)
        {
            await Task.WhenAny(_broken.Task, Task.Delay(1000)).ConfigureAwait(false);
            if (Inflight > 0 && DateTimeOffset.UtcNow - _lastAck > _ioTimeout)
            {
                Break(new DeliveryException($"no acknowledgement for {_ioTimeout.TotalSeconds:0}s with {Inflight} frame(s) outstanding"));
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
}
