using System.Net;
using System.Net.Sockets;
using System.Text;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// A proxy in front of a dockerd's Unix socket that passes every byte through unchanged and records each HTTP request
/// line the client sent (method and target). Requests are framed as HTTP/1.1 frames them (Content-Length or chunked
/// bodies), so a build context that happens to contain "POST /build" is never counted as a request. Used to count
/// the build calls that reached the Engine API.
/// </summary>
internal sealed class EngineApiCounter : IAsyncDisposable
{
    private readonly TempDir _dir = new("engine-proxy");
    private readonly Socket _listener;
    private readonly Func<Socket> _upstream;
    private readonly EndPoint _upstreamEndPoint;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(string Method, string Target)> _requests = [];
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;

    public EngineApiCounter(string upstreamSocket)
    {
        _upstream = () => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _upstreamEndPoint = new UnixDomainSocketEndPoint(upstreamSocket);
        Socket = _dir["docker.sock"];
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(Socket));
        _listener.Listen(64);
        _accepting = AcceptAsync();
    }

    // The same proxy in front of a TCP peer on a network namespace's loopback, listening on that namespace's 127.0.0.1.
    private EngineApiCounter(string netnsPath, int upstreamPort, int hostPort = -1)
    {
        _upstream = () => InNetns.TcpSocket(netnsPath);
        _upstreamEndPoint = new IPEndPoint(IPAddress.Loopback, upstreamPort);
        Socket = string.Empty;
        _listener = hostPort < 0 ? InNetns.TcpSocket(netnsPath) : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, Math.Max(0, hostPort)));
        _listener.Listen(64);
        Address = $"127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}";
        _accepting = AcceptAsync();
    }

    /// <summary>
    /// A counting proxy in front of the docker-registry at 127.0.0.1:<paramref name="registryPort"/> in network namespace
    /// <paramref name="netns"/> (a <see cref="PrivateDockerd"/>'s), listening on <see cref="Address"/> in that namespace: the
    /// engine pushes through it, and so does a program run there. Counts the registry requests (blob uploads among them).
    /// </summary>
    public static EngineApiCounter ForRegistry(string netns, int registryPort) => new("/run/netns/" + netns, registryPort);

    /// <summary>
    /// The registry of <paramref name="netns"/> at the same address on the host's loopback (127.0.0.1:<paramref name="registryPort"/>
    /// there too): a process in the host's namespace (the builder daemon, which must also reach the coordinator) reaches
    /// the registry the engine pushes to under the same name.
    /// </summary>
    public static EngineApiCounter BridgeFromHost(string netns, int registryPort) => new("/run/netns/" + netns, registryPort, registryPort);

    public string Socket { get; }

    /// <summary>With <see cref="ForRegistry"/>: host:port of the proxy in the namespace.</summary>
    public string Address { get; } = string.Empty;

    public string Endpoint => "unix://" + Socket;

    public IReadOnlyList<(string Method, string Target)> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>The image tags (t=) of every POST /build seen, in order.</summary>
    public IReadOnlyList<string> BuildTags => Requests
        .Where(r => r.Method == "POST" && PathOf(r.Target).EndsWith("/build", StringComparison.Ordinal))
        .Select(r => Query(r.Target, "t") ?? "(no tag)").ToList();

    public void Reset()
    {
        lock (_requests)
        {
            _requests.Clear();
        }
    }

    private static string PathOf(string target) => target.Split('?')[0];

    private static string? Query(string target, string key)
    {
        var q = target.Split('?', 2);
        return q.Length < 2 ? null : q[1].Split('&').Select(p => p.Split('=', 2)).Where(p => p[0] == key && p.Length == 2).Select(p => Uri.UnescapeDataString(p[1])).FirstOrDefault();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_connections)
            {
                _connections.Add(HandleAsync(client));
            }
        }
    }

    private async Task HandleAsync(Socket client)
    {
        using var c = client;
        using var upstream = _upstream();
        try
        {
            await upstream.ConnectAsync(_upstreamEndPoint, _stop.Token);
            await using var fromClient = new NetworkStream(c, ownsSocket: false);
            await using var toEngine = new NetworkStream(upstream, ownsSocket: false);
            var responses = RelayResponsesAsync(toEngine, fromClient, c, _stop.Token);
            await ForwardRequestsAsync(fromClient, toEngine, _stop.Token);
            upstream.Shutdown(SocketShutdown.Send);
            await responses;
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // a connection closed by either side
        }
    }

    // The engine's answers, byte for byte; when the engine ends its side (a response delimited by the connection's end,
    // or the connection closed after an answer), the client is told so too: without it a client reading such a body to
    // its end waits for an end that never comes.
    private static async Task RelayResponsesAsync(Stream fromEngine, Stream toClient, Socket client, CancellationToken ct)
    {
        try
        {
            await fromEngine.CopyToAsync(toClient, ct);
        }
        finally
        {
            try
            {
                client.Shutdown(SocketShutdown.Send); // also when the engine reset the connection: the client is not left waiting
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // the client has gone already
            }
        }
    }

    private async Task ForwardRequestsAsync(Stream from, Stream to, CancellationToken ct)
    {
        var reader = new ByteReader(from);
        while (true)
        {
            var head = await reader.ReadHeadAsync(ct);
            if (head is null)
            {
                return;
            }

            var text = Encoding.Latin1.GetString(head);
            var lines = text.Split("\r\n");
            var parts = lines[0].Split(' ');
            lock (_requests)
            {
                _requests.Add((parts[0], parts.Length > 1 ? parts[1] : string.Empty));
            }

            await to.WriteAsync(head, ct);
            var headers = lines.Skip(1).Where(l => l.Contains(':', StringComparison.Ordinal))
                .Select(l => (Name: l[..l.IndexOf(':', StringComparison.Ordinal)].Trim().ToLowerInvariant(), Value: l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim())).ToList();
            if (headers.Any(h => h.Name == "upgrade") || headers.Any(h => h.Name == "connection" && h.Value.Contains("upgrade", StringComparison.OrdinalIgnoreCase)))
            {
                await reader.CopyRestAsync(to, ct); // a hijacked stream: raw bytes from here on
                return;
            }

            if (headers.Any(h => h.Name == "transfer-encoding" && h.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
            {
                while (true)
                {
                    var sizeLine = await reader.ReadLineAsync(ct) ?? throw new IOException("chunked body cut");
                    await to.WriteAsync(sizeLine, ct);
                    var size = Convert.ToInt64(Encoding.Latin1.GetString(sizeLine).Split(';')[0].Trim(), 16);
                    if (size == 0)
                    {
                        // trailers, then the empty line
                        while (await reader.ReadLineAsync(ct) is { } trailer)
                        {
                            await to.WriteAsync(trailer, ct);
                            if (trailer.Length == 2)
                            {
                                break;
                            }
                        }

                        break;
                    }

                    await reader.CopyAsync(to, size + 2, ct);
                }
            }
            else if (headers.FirstOrDefault(h => h.Name == "content-length").Value is { } length)
            {
                await reader.CopyAsync(to, long.Parse(length, System.Globalization.CultureInfo.InvariantCulture), ct);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        Task[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }

        await Task.WhenAll(open);
        _stop.Dispose();
        _dir.Dispose();
    }

    /// <summary>A buffered reader of raw bytes: request heads, lines and counted bodies.</summary>
    private sealed class ByteReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        private async Task<bool> FillAsync(CancellationToken ct)
        {
            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                (_end, _start) = (_end - _start, 0);
            }

            if (_end == _buffer.Length)
            {
                throw new IOException("an HTTP head or line longer than 64 KiB");
            }

            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
            _end += n;
            return n > 0;
        }

        private async Task<byte[]?> ReadUntilAsync(byte[] terminator, CancellationToken ct)
        {
            while (true)
            {
                var i = _buffer.AsSpan(_start, _end - _start).IndexOf(terminator);
                if (i >= 0)
                {
                    var result = _buffer.AsSpan(_start, i + terminator.Length).ToArray();
                    _start += i + terminator.Length;
                    return result;
                }

                if (!await FillAsync(ct))
                {
                    return null;
                }
            }
        }

        public Task<byte[]?> ReadHeadAsync(CancellationToken ct) => ReadUntilAsync("\r\n\r\n"u8.ToArray(), ct);

        public Task<byte[]?> ReadLineAsync(CancellationToken ct) => ReadUntilAsync("\r\n"u8.ToArray(), ct);

        public async Task CopyAsync(Stream to, long count, CancellationToken ct)
        {
            while (count > 0)
            {
                if (_start == _end && !await FillAsync(ct))
                {
                    throw new IOException("body cut");
                }

                var n = (int)Math.Min(count, _end - _start);
                await to.WriteAsync(_buffer.AsMemory(_start, n), ct);
                _start += n;
                count -= n;
            }
        }

        public async Task CopyRestAsync(Stream to, CancellationToken ct)
        {
            await to.WriteAsync(_buffer.AsMemory(_start, _end - _start), ct);
            _start = _end;
            await stream.CopyToAsync(to, ct);
        }
    }
}
