using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Sockets that live in another network namespace (a booted container's <c>/proc/PID/ns/net</c>, or a namespace of the
/// test's own), made from this process: a dedicated thread joins the namespace with setns(2), creates the socket and
/// ends; the socket stays in that namespace for its whole life. So the test reaches a daemon that listens on the
/// container's 127.0.0.1 (its /metrics) and lets the container reach a peer on the host's 127.0.0.1 (the fake API
/// server), without an address on the host's own network.
/// </summary>
public static partial class InNetns
{
    private const int CloneNewNet = 0x40000000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    /// <summary>A new TCP socket in the namespace at <paramref name="netnsPath"/>.</summary>
    public static Socket TcpSocket(string netnsPath)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle(netnsPath, FileMode.Open, FileAccess.Read);
                if (setns((int)ns.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new IOException($"setns({netnsPath}): errno {Marshal.GetLastPInvokeError()}");
                }

                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            }
            catch (Exception ex)
            {
                error = ex;
            }
        });
        thread.Start();
        thread.Join();
        return socket ?? throw new IOException($"no socket in {netnsPath}", error);
    }

    /// <summary>An HTTP client whose every connection is made inside the namespace (http://127.0.0.1:PORT is the namespace's own loopback).</summary>
    public static HttpClient HttpClient(string netnsPath, TimeSpan timeout) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = TcpSocket(netnsPath);
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    }) { Timeout = timeout };

    /// <summary>
    /// Listens on 127.0.0.1:<paramref name="port"/> inside the namespace and pipes each connection to 127.0.0.1:
    /// <paramref name="hostPort"/> in this process's namespace.
    /// </summary>
    public static Forwarder Forward(string netnsPath, int port, int hostPort)
    {
        var listener = TcpSocket(netnsPath);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            listener.Listen(64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new Forwarder(listener, hostPort);
    }

    public sealed class Forwarder : IAsyncDisposable
    {
        private readonly Socket _listener;
        private readonly int _hostPort;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accepting;

        internal Forwarder(Socket listener, int hostPort)
        {
            _listener = listener;
            _hostPort = hostPort;
            _accepting = Task.Run(AcceptAsync);
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket inside;
                try
                {
                    inside = await _listener.AcceptAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(() => PipeAsync(inside));
            }
        }

        private async Task PipeAsync(Socket inside)
        {
            using var a = new NetworkStream(inside, ownsSocket: true);
            using var outside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await outside.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _hostPort), _stop.Token);
                using var b = new NetworkStream(outside, ownsSocket: false);
                var up = a.CopyToAsync(b, _stop.Token);
                var down = b.CopyToAsync(a, _stop.Token);
                await Task.WhenAny(up, down);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
                // one side closed or the forwarder stops: the connection ends
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Dispose();
            await _accepting;
            _stop.Dispose();
        }
    }
}
