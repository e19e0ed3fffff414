using System.Diagnostics;
using System.Net.Http;
using System.Net.Sockets;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A private Docker Engine (its own data root and socket, no bridge, no iptables) so a test that builds, cleans or
/// starts containers never touches another test's engine. Started from Debian's docker.io; stopped by its PID.
/// </summary>
public sealed class PrivateDockerd : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Process _process;

    private PrivateDockerd(TempDir dir, Process process, string socket)
    {
        _dir = dir;
        _process = process;
        Socket = socket;
    }

    public string Socket { get; }

    public string Endpoint => "unix://" + Socket;

    public static async Task<PrivateDockerd> StartAsync()
    {
        var dockerd = Peer.Require("dockerd", "docker.io");
        var dir = new TempDir("dockerd");
        var socket = dir["docker.sock"];
        var psi = new ProcessStartInfo(dockerd)
        {
            ArgumentList =
            {
                "--data-root", dir["data"], "--exec-root", dir["exec"], "--pidfile", dir["docker.pid"],
                "-H", "unix://" + socket, "--bridge=none", "--iptables=false", "--ip-masq=false",
                "--storage-driver=vfs", "--log-level=warn",
            },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        var p = Process.Start(psi) ?? throw Peer.Missing("dockerd", "could not start it");
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        var d = new PrivateDockerd(dir, p, socket);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (p.HasExited)
            {
                throw Peer.Missing("dockerd", $"it exited with {p.ExitCode}");
            }

            if (await d.PingAsync())
            {
                return d;
            }

            await Task.Delay(100);
        }

        await d.DisposeAsync();
        throw Peer.Missing("dockerd", "it did not answer /_ping within 30 s");
    }

    public async Task<bool> PingAsync()
    {
        try
        {
            using var http = UnixHttp(Socket);
            var r = await http.GetAsync("http://docker/_ping");
            return r.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or SocketException or IOException or TaskCanceledException)
        {
            return false;
        }
    }

    public static HttpClient UnixHttp(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    })
    { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>Runs the docker CLI against this engine.</summary>
    public Task<string> DockerAsync(string args, TimeSpan? timeout = null) => Run.ShAsync($"docker -H {Endpoint} {args}", timeout ?? TimeSpan.FromMinutes(2));

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            // already gone
        }

        // vfs layers may hold mounts; unmount what is left before removing the directory.
        await Run.ProcessAsync("/bin/sh", ["-c", $"grep ' {_dir.Path}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l"], TimeSpan.FromSeconds(20));
        _dir.Dispose();
        _process.Dispose();
    }
}

/// <summary>Debian's docker-registry on 127.0.0.1 with a free port and its own storage.</summary>
public sealed class PrivateRegistry : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Process _process;

    private PrivateRegistry(TempDir dir, Process process, int port)
    {
        _dir = dir;
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    public static async Task<PrivateRegistry> StartAsync()
    {
        var registry = Peer.Require("docker-registry", "docker-registry");
        var dir = new TempDir("registry");
        var port = Peer.FreePort();
        var config = dir["config.yml"];
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log: {"{"}level: warn{"}"}
            storage: {"{"}filesystem: {"{"}rootdirectory: {dir["data"]}{"}"}, delete: {"{"}enabled: true{"}"}{"}"}
            http: {"{"}addr: 127.0.0.1:{port}{"}"}
            """);
        var p = Process.Start(new ProcessStartInfo(registry) { ArgumentList = { "serve", config }, RedirectStandardError = true, RedirectStandardOutput = true })
            ?? throw Peer.Missing("docker-registry", "could not start it");
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        var r = new PrivateRegistry(dir, p, port);
        try
        {
            await Peer.WaitForTcpAsync(port, TimeSpan.FromSeconds(20));
        }
        catch (SocketException)
        {
            await r.DisposeAsync();
            throw Peer.Missing("docker-registry", "it did not listen within 20 s");
        }

        return r;
    }

    public async Task<string> GetAsync(string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync($"http://{Address}{path}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _dir.Dispose();
    }
}
