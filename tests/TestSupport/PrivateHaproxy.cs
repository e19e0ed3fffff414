using System.Globalization;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Debian's haproxy running the shipped example (packaging/haproxy/toolforge-coordinator.cfg) with only addresses and
/// ports substituted — each substitution asserted to have matched — in the foreground, stopped by its PID.
/// </summary>
public sealed class PrivateHaproxy : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly BackgroundProcess _process;

    private PrivateHaproxy(TempDir dir, BackgroundProcess process, int port)
    {
        _dir = dir;
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Address => $"https://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public string Output => _process.Output;

    /// <summary>Starts haproxy in front of <paramref name="backends"/> (gRPC port, agent-check port), all on 127.0.0.1.</summary>
    public static async Task<PrivateHaproxy> StartAsync(IReadOnlyList<(int Port, int AgentPort)> backends)
    {
        var haproxy = Peer.Require("haproxy", "haproxy");
        var text = await File.ReadAllTextAsync(Path.Combine(Run.RepoRoot, "packaging/haproxy/toolforge-coordinator.cfg"));
        var port = Peer.FreePort();
        text = Replace(text, "bind 0.0.0.0:9500", $"bind 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
        for (var i = 0; i < 3; i++)
        {
            var server = $"server coordinator{i + 1} tools-coordinator-{i + 1}.tools.eqiad1.wikimedia.cloud:9500";
            text = Replace(text, server, i < backends.Count
                ? $"server coordinator{i + 1} 127.0.0.1:{backends[i].Port.ToString(CultureInfo.InvariantCulture)} agent-port {backends[i].AgentPort.ToString(CultureInfo.InvariantCulture)}"
                : string.Empty);
        }

        var dir = new TempDir("haproxy");
        // The one addition: a stats socket, so a test can see what haproxy thinks of each instance.
        text = Replace(text, "global\n    maxconn 8000", $"global\n    maxconn 8000\n    stats socket {dir["admin.sock"]} level admin");
        var cfg = dir["haproxy.cfg"];
        await File.WriteAllTextAsync(cfg, text);
        var check = await Run.ProcessAsync(haproxy, ["-c", "-f", cfg], TimeSpan.FromSeconds(20));
        if (check.ExitCode != 0)
        {
            dir.Dispose();
            throw new InvalidOperationException($"haproxy -c refused the example config: {check}");
        }

        var process = BackgroundProcess.Start(haproxy, ["-db", "-f", cfg]);
        var h = new PrivateHaproxy(dir, process, port);
        try
        {
            await Peer.WaitForTcpAsync(port, TimeSpan.FromSeconds(20));
        }
        catch (System.Net.Sockets.SocketException)
        {
            var output = process.Output;
            await h.DisposeAsync();
            throw new InvalidOperationException($"haproxy did not start: {output}");
        }

        return h;
    }

    /// <summary>Each backend server's status as haproxy sees it ("UP", "DOWN", "NOLB", "MAINT", with "DRAIN"...).</summary>
    public async Task<IReadOnlyDictionary<string, string>> ServerStatesAsync()
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(_dir["admin.sock"]), cts.Token);
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes("show stat\n"), cts.Token);
        var text = new System.Text.StringBuilder();
        var buffer = new byte[8192];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, cts.Token)) > 0)
        {
            text.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, n));
        }

        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].TrimStart('#', ' ').Split(',');
        var status = Array.IndexOf(header, "status");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(',');
            if (f.Length > status && f[0] == "toolforge_coordinators" && f[1] is not ("BACKEND" or "FRONTEND"))
            {
                result[f[1]] = f[status];
            }
        }

        return result;
    }

    /// <summary>Waits until haproxy sees every server in <paramref name="up"/> UP (and, optionally, the rest not UP).</summary>
    public async Task WaitForAsync(IReadOnlyCollection<string> up, TimeSpan timeout, bool othersDown = false)
    {
        var deadline = DateTime.UtcNow + timeout;
        IReadOnlyDictionary<string, string> states = new Dictionary<string, string>();
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                states = await ServerStatesAsync();
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(100); // the stats socket comes up a moment after the frontend
                continue;
            }

            if (up.All(u => states.TryGetValue(u, out var s) && s.StartsWith("UP", StringComparison.Ordinal))
                && (!othersDown || states.Where(x => !up.Contains(x.Key)).All(x => !x.Value.StartsWith("UP", StringComparison.Ordinal))))
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"haproxy: wanted {string.Join(",", up)} UP; states: {string.Join(", ", states.Select(x => $"{x.Key}={x.Value}"))}");
    }

    private static string Replace(string text, string what, string with)
    {
        if (!text.Contains(what, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"packaging/haproxy/toolforge-coordinator.cfg no longer contains \"{what}\"; update the test's substitutions");
        }

        return text.Replace(what, with, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        await _process.StopAsync(TimeSpan.FromSeconds(10));
        await _process.DisposeAsync();
        _dir.Dispose();
    }
}
