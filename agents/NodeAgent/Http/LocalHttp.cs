using System.Net.Sockets;
using System.Text;

namespace Toolforge.Agents.NodeAgent.Http;

/// <summary>What the node-agent's HTTP peers share: a connection to a unix socket (Docker, CRI), an error answer read bounded.</summary>
internal static class LocalHttp
{
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
