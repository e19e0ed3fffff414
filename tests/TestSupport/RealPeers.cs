using System.Diagnostics;
using System.Net.Http;
using System.Net.Sockets;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A private Docker Engine (its own data root and socket, no bridge, no iptables) so a test that builds, cleans or
/// starts containers never touches another test's engine. Started from Debian's docker.io; stopped by its PID.
/// It runs in a network namespace of its own: dockerd started with --bridge=none deletes any docker0 link it sees,
/// and in the host's namespace that was the host's own Docker bridge. The socket is a file, reached from anywhere.
/// </summary>
public sealed class PrivateDockerd : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Process _process;

    private PrivateDockerd(TempDir dir, Process process, string socket, string netns)
    {
        _dir = dir;
        _process = process;
        Socket = socket;
        NetworkNamespace = netns;
    }

    public string Socket { get; }

    /// <summary>The engine's network namespace (a <see cref="PrivateRegistry"/> it pushes to must run in it).</summary>
    public string NetworkNamespace { get; }

    public string Endpoint => "unix://" + Socket;

    /// <summary>
    /// nsenter's argument that runs a program in the named network namespace. Not "ip netns exec": that one also
    /// remounts /sys, and dockerd then finds no cgroups.
    /// </summary>
    internal static string InNamespace(string netns) => "--net=/run/netns/" + netns;

    public static async Task<PrivateDockerd> StartAsync()
    {
        var dockerd = Peer.Require("dockerd", "docker.io");
        Peer.Require("ip", "iproute2");
        var netns = "tfa-dock-" + Guid.NewGuid().ToString("N")[..8];
        foreach (var step in new[] { ["netns", "add", netns], new[] { "-n", netns, "link", "set", "lo", "up" } })
        {
            var r = await Run.ProcessAsync("ip", step, TimeSpan.FromSeconds(10));
            if (r.ExitCode != 0)
            {
                await Run.ProcessAsync("ip", ["netns", "del", netns], TimeSpan.FromSeconds(10));
                throw Peer.Missing("a network namespace for dockerd", $"ip {string.Join(' ', step)}: {r.Stderr.Trim()}");
            }
        }

        var dir = new TempDir("dockerd");
        var socket = dir["docker.sock"];
        var psi = new ProcessStartInfo("nsenter")
        {
            ArgumentList =
            {
                InNamespace(netns), dockerd,
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
        var d = new PrivateDockerd(dir, p, socket, netns);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (p.HasExited)
            {
                var code = p.ExitCode;
                await d.DisposeAsync();
                throw Peer.Missing("dockerd", $"it exited with {code}");
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

    private bool _disposed;

    /// <summary>Stops the engine (a test may do so early, to see the agents find it gone); safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;

        // Containers first, so their shims exit with them; a shim is re-parented to PID 1 and would outlive dockerd.
        if (!_process.HasExited)
        {
            await Run.ProcessAsync("/bin/sh", ["-c", $"docker -H {Endpoint} ps -aq | xargs -r docker -H {Endpoint} rm -f"], TimeSpan.FromSeconds(60));
        }

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

        // Whatever still names this engine's directories (a shim whose container would not stop) goes by its PID.
        await TestProcesses.KillTreesAsync(cmdline => cmdline.Contains(_dir.Path, StringComparison.Ordinal));

        // vfs layers may hold mounts; unmount what is left before removing the directory.
        await Run.ProcessAsync("/bin/sh", ["-c", $"grep ' {_dir.Path}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l"], TimeSpan.FromSeconds(20));
        var del = await Run.ProcessAsync("ip", ["netns", "del", NetworkNamespace], TimeSpan.FromSeconds(20));
        if (del.ExitCode != 0)
        {
            Console.Error.WriteLine($"PrivateDockerd: could not delete network namespace {NetworkNamespace}: {del.Stderr.Trim()}");
        }

        _dir.Dispose();
        _process.Dispose();
    }
}

/// <summary>
/// Debian's docker-registry on 127.0.0.1 with a free port and its own storage; with a network namespace (a
/// <see cref="PrivateDockerd"/>'s), on that namespace's 127.0.0.1, where the engine pushes to it, and read from here
/// through busybox wget run in the namespace.
/// </summary>
public sealed class PrivateRegistry : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Process _process;

    private readonly string? _netns;

    private PrivateRegistry(TempDir dir, Process process, int port, string? netns)
    {
        _dir = dir;
        _process = process;
        Port = port;
        _netns = netns;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    public static async Task<PrivateRegistry> StartAsync(string? networkNamespace = null)
    {
        var registry = Peer.Require("docker-registry", "docker-registry");
        if (networkNamespace is not null && !File.Exists("/bin/busybox"))
        {
            throw Peer.Missing("/bin/busybox", "install Debian package busybox-static");
        }

        var dir = new TempDir("registry");
        var port = Peer.FreePort();
        var config = dir["config.yml"];
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log: {"{"}level: warn{"}"}
            storage: {"{"}filesystem: {"{"}rootdirectory: {dir["data"]}{"}"}, delete: {"{"}enabled: true{"}"}{"}"}
            http: {"{"}addr: 127.0.0.1:{port}{"}"}
            """);
        var psi = networkNamespace is null
            ? new ProcessStartInfo(registry) { ArgumentList = { "serve", config } }
            : new ProcessStartInfo("nsenter") { ArgumentList = { PrivateDockerd.InNamespace(networkNamespace), registry, "serve", config } };
        psi.RedirectStandardError = true;
        psi.RedirectStandardOutput = true;
        var p = Process.Start(psi) ?? throw Peer.Missing("docker-registry", "could not start it");
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        var r = new PrivateRegistry(dir, p, port, networkNamespace);
        var sw = Stopwatch.StartNew();
        var lastError = "no answer yet";
        while (sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            try
            {
                await r.GetAsync("/v2/");
                return r;
            }
            catch (Exception ex) when (ex is HttpRequestException or SocketException or TaskCanceledException or IOException)
            {
                lastError = ex.Message; // still starting; said below if it never answers
                await Task.Delay(100);
            }
        }

        await r.DisposeAsync();
        throw Peer.Missing("docker-registry", $"it did not answer within 20 s (last: {lastError})");
    }

    public async Task<string> GetAsync(string path)
    {
        if (_netns is null)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            return await http.GetStringAsync($"http://{Address}{path}");
        }

        var r = await Run.ProcessAsync("nsenter", [PrivateDockerd.InNamespace(_netns), "/bin/busybox", "wget", "-q", "-O", "-", $"http://{Address}{path}"], TimeSpan.FromSeconds(10));
        return r.ExitCode == 0 ? r.Stdout : throw new HttpRequestException($"GET {path} in {_netns}: exit {r.ExitCode} {r.Stderr.Trim()}");
    }

    /// <summary>Stops the registry process where it stands (SIGSTOP, by its pid): connections are taken by the kernel but never answered.</summary>
    public void Freeze() => Run.ProcessAsync("kill", ["-STOP", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]).GetAwaiter().GetResult();

    /// <summary>Lets a frozen registry go on (SIGCONT).</summary>
    public void Thaw() => Run.ProcessAsync("kill", ["-CONT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]).GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Thaw();
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _dir.Dispose();
    }
}
