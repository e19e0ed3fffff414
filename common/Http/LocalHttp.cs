using System.Net.Sockets;
using System.Text;

namespace Toolforge.Agents.Common.Http;

/// <summary>
/// What the agents' local HTTP peers share (Docker's Engine API, CRI): a connection to a unix socket, a client for a
/// unix:// or tcp:// endpoint, an answer read bounded, an error answer read bounded.
/// </summary>
public static class LocalHttp
{
    /// <summary>
    /// An HttpClient for an engine endpoint (unix:///path, or tcp:// or http://host:port), without a timeout of its own:
    /// every call brings its deadline.
    /// </summary>
    public static HttpClient Client(string endpoint)
    {
        var uri = new Uri(endpoint);
        var handler = new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(5), PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        Uri baseAddress;
        if (uri.Scheme == "unix")
        {
            handler.ConnectCallback = UnixSocket(uri.AbsolutePath);
            baseAddress = new Uri("http://docker/");
        }
        else if (uri.Scheme is "tcp" or "http")
        {
            baseAddress = new UriBuilder("http", uri.Host, uri.Port).Uri;
        }
        else
        {
            handler.Dispose();
            throw new NotSupportedException($"endpoint {endpoint}: only unix:// and tcp:// are supported here");
        }

        return new HttpClient(handler) { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>
    /// A successful answer's body, read up to <paramref name="maxBytes"/>: more is refused (InvalidDataException naming
    /// <paramref name="what"/>), never buffered.
    /// </summary>
    public static async Task<ReadOnlyMemory<byte>> ReadAtMostAsync(HttpResponseMessage response, int maxBytes, string what, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > maxBytes)
            {
                throw new InvalidDataException($"{what} answered more than {maxBytes / (1024 * 1024)} MiB");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    /// <summary>A SocketsHttpHandler ConnectCallback that connects to the unix socket at <paramref name="path"/>.</summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> UnixSocket(string path) =>
        async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };

    /// <summary>
    /// What a peer's error answer says: its own message when <paramref name="messageOf"/> finds one in the body (the
    /// peer's error JSON), else the body's text; read to at most <paramref name="max"/> bytes, cut to 300 characters.
    /// </summary>
    public static async Task<string> ErrorMessageAsync(HttpResponseMessage response, int max, Func<string, string?> messageOf, CancellationToken ct)
    {
        var text = (await ReadBoundedAsync(response, max, ct).ConfigureAwait(false)).Trim();
        string? message = null;
        try
        {
            message = messageOf(text);
        }
        catch (System.Text.Json.JsonException)
        {
            // not the peer's error JSON: the body itself says what went wrong
        }

        message ??= text;
        return message.Length > 300 ? message[..300] + "…" : message;
    }

    private static async Task<string> ReadBoundedAsync(HttpResponseMessage response, int max, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new byte[max];
        var n = 0;
        int read;
        while (n < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(n), ct).ConfigureAwait(false)) > 0)
        {
            n += read;
        }

        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
