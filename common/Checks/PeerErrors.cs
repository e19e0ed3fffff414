using System.Net.Sockets;

namespace Toolforge.Agents.Common.Checks;

/// <summary>
/// What an admin should read when a local daemon cannot be reached over its socket: "no Docker socket at
/// /var/run/docker.sock: is dockerd running?" rather than the socket layer's "Cannot assign requested address".
/// </summary>
public static class PeerErrors
{
    /// <summary>
    /// One line for <paramref name="ex"/>, a failure to reach <paramref name="peer"/> ("Docker") run by
    /// <paramref name="daemon"/> ("dockerd") at <paramref name="endpoint"/> (unix:///path or a URL); true when the
    /// peer is down (nothing there, or nothing listening), false when it answered wrong.
    /// </summary>
    public static (bool Down, string Message) Describe(Exception ex, string peer, string daemon, string endpoint)
    {
        var path = UnixPath(endpoint);
        if (path is not null && !File.Exists(path))
        {
            return (true, $"no {peer} socket at {path}: is {daemon} running?");
        }

        var socket = Find<SocketException>(ex);
        if (socket is { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return (true, path is not null
                ? $"{peer} refused the connection at {path}: {daemon} has stopped and left its socket behind"
                : $"{peer} refused the connection at {endpoint}: is {daemon} running?");
        }

        if (socket is not null || Find<FileNotFoundException>(ex) is not null || Find<DirectoryNotFoundException>(ex) is not null)
        {
            return (true, $"cannot reach {peer} at {path ?? endpoint}: {socket?.Message ?? ex.GetBaseException().Message}");
        }

        return (false, $"{peer} at {path ?? endpoint}: {ex.GetBaseException().Message}");
    }

    /// <summary>
    /// After a call to a unix:// peer ran out of time: does its socket accept a connection at all? Null when it does
    /// (or when its backlog is full, EAGAIN: a peer that does not accept is hung): the peer is hung. Otherwise the
    /// "down" line of <see cref="Describe"/> (no socket, or one left behind that refuses), so that a call whose deadline
    /// passed before it could even connect (a starved CPU), or whose peer died while it waited, is not reported as
    /// "accepted the connection but did not answer". A unix connect does not wait; the second is a bound only.
    /// </summary>
    public static async Task<string?> DownAfterTimeoutAsync(string endpoint, string peer, string daemon, CancellationToken ct)
    {
        if (UnixPath(endpoint) is not { } path)
        {
            return null;
        }

        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(path), cts.Token).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.WouldBlock)
        {
            return null; // listening, its backlog full: it does not accept
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            var (down, message) = Describe(ex, peer, daemon, endpoint);
            return down ? message : null;
        }
    }

    /// <summary>The socket path of a unix:// endpoint, or null.</summary>
    public static string? UnixPath(string endpoint) =>
        endpoint.StartsWith("unix://", StringComparison.Ordinal) ? endpoint["unix://".Length..] : null;

    private static T? Find<T>(Exception? ex)
        where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is T t)
            {
                return t;
            }

            if (ex is AggregateException { InnerExceptions.Count: > 0 } a && Find<T>(a.InnerExceptions[0]) is { } inner)
            {
                return inner;
            }
        }

        return null;
    }
}
