using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>One journal entry on its way: its cursor, and its syslog message (null when filtered or rate-limited).</summary>
public sealed class ShipItem(string cursor, long realtimeMicros, byte[]? payload)
{
    public string Cursor { get; } = cursor;
    public long RealtimeMicros { get; } = realtimeMicros;
    public byte[]? Payload { get; } = payload;
    public volatile bool Done;
    public int Attempts;
}

/// <summary>A delivery connection to one receiver.</summary>
public interface IShipConnection : IAsyncDisposable
{
    /// <summary>How many sent-but-unconfirmed items may be outstanding.</summary>
    int Window { get; }

    /// <summary>Completes (faulted) when the connection breaks.</summary>
    Task Broken { get; }

    Task SendAsync(ShipItem item, CancellationToken ct);

    /// <summary>Pushes what was written out. For TCP/TLS that is the confirmation: items become Done.</summary>
    Task FlushAsync(CancellationToken ct);
}

public sealed class DeliveryException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Opening TCP and TLS streams with deadlines.</summary>
internal static class Streams
{
    public static async Task<(TcpClient Client, Stream Stream)> ConnectAsync(Destination d, DestinationOptions o, TimeSpan timeout, CancellationToken ct)
    {
        var client = new TcpClient { NoDelay = false };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await client.ConnectAsync(d.Host, d.Port, cts.Token).ConfigureAwait(false);
            client.SendBufferSize = 1 << 20;
            Stream stream = client.GetStream();
            if (d.Kind is TransportKind.Tls or TransportKind.RelpTls)
            {
                var bundle = Certificates.LoadBundle(o.CaBundle);
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                var options = new SslClientAuthenticationOptions
                {
                    // The receiver's certificate must carry this name (checked by ServerValidator with the chain).
                    TargetHost = o.ServerName.Length > 0 ? o.ServerName : d.Host,
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = Certificates.ServerValidator(bundle),
                };
                if (o.Certificate.Length > 0)
                {
                    options.ClientCertificates = [Certificates.LoadWithKey(o.Certificate, o.Key)];
                }

                try
                {
                    await ssl.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
                }
                catch (AuthenticationException ex)
                {
                    await ssl.DisposeAsync().ConfigureAwait(false);
                    throw new DeliveryException($"{d}: TLS handshake refused: {ex.Message} (is the receiver's certificate signed by {o.CaBundle}, for the name {options.TargetHost}, and is ours permitted there?)", ex);
                }

                stream = ssl;
            }

            return (client, stream);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            client.Dispose();
            throw new DeliveryException(ex is OperationCanceledException ? $"{d}: no connection within {timeout.TotalSeconds:0}s" : $"{d}: {ex.Message}", ex);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }
}

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
        var header = Encoding.ASCII.GetBytes($"{txnr.ToString(CultureInfo.InvariantCulture)} {command} {data.Length.ToString(CultureInfo.InvariantCulture)} ");
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

public sealed record RelpFrame(long Txnr, string Command, string Data);

/// <summary>Reads RELP frames: "TXNR SP COMMAND SP DATALEN [SP DATA] LF".</summary>
public sealed class RelpFrameReader(Stream stream)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    public async Task<RelpFrame?> ReadAsync(CancellationToken ct)
    {
        var txnr = await TokenAsync(ct).ConfigureAwait(false);
        if (txnr is null)
        {
            return null;
        }

        var command = await TokenAsync(ct).ConfigureAwait(false) ?? throw new FormatException("RELP frame without a command");
        var lengthText = await TokenAsync(ct, allowNewline: true).ConfigureAwait(false) ?? throw new FormatException("RELP frame without a length");
        var ended = lengthText.EndsWith('\n');
        var length = int.Parse(lengthText.TrimEnd('\n'), NumberStyles.None, CultureInfo.InvariantCulture);
        var data = string.Empty;
        if (!ended)
        {
            var bytes = new byte[length];
            for (var got = 0; got < length;)
            {
                if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
                {
                    throw new IOException("connection closed inside a RELP frame");
                }

                var n = Math.Min(length - got, _end - _start);
                Buffer.BlockCopy(_buffer, _start, bytes, got, n);
                _start += n;
                got += n;
            }

            data = Encoding.UTF8.GetString(bytes);
            if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
            {
                throw new IOException("connection closed before a RELP frame's trailer");
            }

            if (_buffer[_start++] != (byte)'\n')
            {
                throw new FormatException("RELP frame does not end with LF");
            }
        }

        return new RelpFrame(long.Parse(txnr, NumberStyles.None, CultureInfo.InvariantCulture), command, data);
    }

    // A token up to a space (consumed); with allowNewline, a token ending in LF keeps it so the caller sees the frame ended.
    private async Task<string?> TokenAsync(CancellationToken ct, bool allowNewline = false)
    {
        var sb = new StringBuilder();
        while (true)
        {
            if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
            {
                return sb.Length == 0 ? null : throw new IOException("connection closed inside a RELP header");
            }

            var c = (char)_buffer[_start++];
            if (c == ' ')
            {
                return sb.ToString();
            }

            if (c == '\n' && allowNewline)
            {
                return sb.Append('\n').ToString();
            }

            if (sb.Length > 32)
            {
                throw new FormatException("RELP header token too long");
            }

            sb.Append(c);
        }
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        _start = 0;
        _end = await stream.ReadAsync(_buffer, ct).ConfigureAwait(false);
        return _end > 0;
    }
}
