using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Toolforge.Agents.TestSupport.Cri.V1;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A private containerd (Debian's containerd 1.6 + runc) speaking CRI on its own socket, with its own root, state and
/// runc directories under /tmp/containerd-*, in a network namespace of its own (so the CNI bridge that makes
/// NetworkReady true lives there), with images made from busybox-static. The recipe and its two settings this
/// machine needs (restrict_oom_score_adj, no hostname on host-network pods) are in
/// ../shared/recipes/containerd-cri-recipe.md. Stopped and cleaned up by PID; nothing is left in /run/containerd.
/// </summary>
public sealed class PrivateContainerd : IAsyncDisposable
{
    public const string SandboxImage = "docker.io/local/pause:1";

    private readonly TempDir _dir;
    private readonly string _netns;
    private Process? _process;
    private GrpcChannel? _channel;
    private bool _frozen;

    private PrivateContainerd(TempDir dir, string netns)
    {
        _dir = dir;
        _netns = netns;
    }

    public string Socket => _dir["containerd.sock"];

    public string Endpoint => "unix://" + Socket;

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public RuntimeService.RuntimeServiceClient Cri => new(_channel ??= Channel(Socket));

    /// <summary>Starts containerd and imports busybox under <paramref name="images"/> (and the sandbox image).</summary>
    public static async Task<PrivateContainerd> StartAsync(IEnumerable<string>? images = null, bool networkReady = true)
    {
        Peer.Require("containerd", "containerd");
        Peer.Require("runc", "runc");
        Peer.Require("ctr", "containerd");
        var netns = "tfa-ctrd-" + Guid.NewGuid().ToString("N")[..8];
        var add = await Run.ProcessAsync("ip", ["netns", "add", netns], TimeSpan.FromSeconds(10));
        if (add.ExitCode != 0)
        {
            throw Peer.Missing("a network namespace for containerd", add.Stderr.Trim());
        }

        await Run.ProcessAsync("ip", ["-n", netns, "link", "set", "lo", "up"], TimeSpan.FromSeconds(10));
        var c = new PrivateContainerd(new TempDir("containerd"), netns);
        try
        {
            c.WriteConfig(criEnabled: true);
            if (networkReady)
            {
                c.WriteCniConfig();
            }

            await c.StartProcessAsync(waitForCri: true);
            var tar = c._dir["busybox-oci.tar"];
            OciImage.Write(tar, [SandboxImage, .. images ?? []], [("tool", 52000), ("other", 1000)]);
            var import = await Run.ProcessAsync("timeout", ["60", "ctr", "--address", c.Socket, "-n", "k8s.io", "images", "import", tar], TimeSpan.FromSeconds(70));
            if (import.ExitCode != 0)
            {
                throw new InvalidOperationException($"ctr images import failed: {import}");
            }

            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    private void WriteConfig(bool criEnabled)
    {
        foreach (var d in new[] { "root", "state", "opt", "runc", "cni/net.d", "cni/bin", "cni/ipam", "pods", "certs.d/docker.io" })
        {
            Directory.CreateDirectory(_dir[d]);
        }

        File.WriteAllText(_dir["certs.d/docker.io/hosts.toml"], "server = \"http://127.0.0.1:1\"\n[host.\"http://127.0.0.1:1\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
        foreach (var plugin in new[] { "bridge", "host-local", "loopback" })
        {
            var link = _dir["cni/bin/" + plugin];
            if (!File.Exists(link) && File.Exists("/usr/lib/cni/" + plugin))
            {
                File.CreateSymbolicLink(link, "/usr/lib/cni/" + plugin);
            }
        }

        File.WriteAllText(_dir["config.toml"], $$"""
            version = 2
            root = "{{_dir["root"]}}"
            state = "{{_dir["state"]}}"
            oom_score = 0
            {{(criEnabled ? string.Empty : "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]")}}
            [grpc]
              address = "{{Socket}}"
            [ttrpc]
              address = "{{Socket}}.ttrpc"
            [plugins]
              [plugins."io.containerd.internal.v1.opt"]
                path = "{{_dir["opt"]}}"
              [plugins."io.containerd.grpc.v1.cri"]
                sandbox_image = "{{SandboxImage}}"
                disable_apparmor = true
                restrict_oom_score_adj = true
                stream_server_address = "127.0.0.1"
                stream_server_port = "0"
                netns_mounts_under_state_dir = true
                [plugins."io.containerd.grpc.v1.cri".containerd]
                  snapshotter = "overlayfs"
                  default_runtime_name = "runc"
                  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                    runtime_type = "io.containerd.runc.v2"
                    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                      SystemdCgroup = false
                      Root = "{{_dir["runc"]}}"
                [plugins."io.containerd.grpc.v1.cri".cni]
                  bin_dir = "{{_dir["cni/bin"]}}"
                  conf_dir = "{{_dir["cni/net.d"]}}"
                [plugins."io.containerd.grpc.v1.cri".registry]
                  config_path = "{{_dir["certs.d"]}}"
            """);
    }

    // A bridge network inside containerd's own namespace: NetworkReady becomes true; no pod of the tests uses it.
    private void WriteCniConfig()
    {
        var subnet = $"10.{230 + Random.Shared.Next(0, 20)}.{Random.Shared.Next(0, 250)}.0/24";
        File.WriteAllText(_dir["cni/net.d/10-tfa.conflist"], $$"""
            { "cniVersion": "0.4.0", "name": "tfa",
              "plugins": [ { "type": "bridge", "bridge": "tfa0", "isGateway": true, "ipMasq": false,
                "ipam": { "type": "host-local", "dataDir": "{{_dir["cni/ipam"]}}", "ranges": [[{ "subnet": "{{subnet}}" }]] } } ] }
            """);
    }

    private async Task StartProcessAsync(bool waitForCri)
    {
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "--net=/run/netns/" + _netns, "containerd", "--config", _dir["config.toml"], "--log-level", "warn" })
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi) ?? throw Peer.Missing("containerd", "could not start it");
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (_process.HasExited)
            {
                throw Peer.Missing("containerd", $"it exited with {_process.ExitCode}");
            }

            if (File.Exists(Socket))
            {
                if (!waitForCri)
                {
                    return;
                }

                try
                {
                    await Cri.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(1));
                    return;
                }
                catch (RpcException)
                {
                    // not yet
                }
            }

            await Task.Delay(50);
        }

        throw Peer.Missing("containerd", "its CRI did not answer within 20 s");
    }

    /// <summary>A host-network pod sandbox (no hostname: containerd would refuse it) with kubelet's labels.</summary>
    public async Task<(string Id, PodSandboxConfig Config)> RunPodAsync(string ns, string name)
    {
        var uid = Guid.NewGuid().ToString();
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = ns, Uid = uid },
            LogDirectory = _dir[$"pods/{ns}_{name}_{uid}"],
            Labels = { ["io.kubernetes.pod.namespace"] = ns, ["io.kubernetes.pod.name"] = name, ["io.kubernetes.pod.uid"] = uid },
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = $"/tfa-ctrd/{_netns}/pod{uid}",
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Pod, Ipc = NamespaceMode.Pod } },
            },
        };
        var r = await Cri.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config }, deadline: DateTime.UtcNow.AddSeconds(60));
        return (r.PodSandboxId, config);
    }

    /// <summary>Creates and starts a container in the pod running `sleep`, as <paramref name="uid"/> when given.</summary>
    public async Task<string> RunContainerAsync((string Id, PodSandboxConfig Config) pod, string name, string image, long? uid = null)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = image },
            Command = { "/bin/sleep" },
            Args = { "3600" },
            LogPath = name + "/0.log",
            Labels =
            {
                ["io.kubernetes.container.name"] = name,
                ["io.kubernetes.pod.namespace"] = pod.Config.Metadata.Namespace,
                ["io.kubernetes.pod.name"] = pod.Config.Metadata.Name,
            },
            Linux = new LinuxContainerConfig
            {
                SecurityContext = new LinuxContainerSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Container },
                    RunAsUser = uid is { } u ? new Int64Value { Value = u } : null,
                },
            },
        };
        var created = await Cri.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod.Id, Config = config, SandboxConfig = pod.Config },
            deadline: DateTime.UtcNow.AddSeconds(60));
        await Cri.StartContainerAsync(new StartContainerRequest { ContainerId = created.ContainerId }, deadline: DateTime.UtcNow.AddSeconds(60));
        return created.ContainerId;
    }

    /// <summary>SIGTERM and wait: containerd removes its socket (the clean "down").</summary>
    public async Task StopAsync()
    {
        await ThawAsync();
        if (_process is { HasExited: false } p)
        {
            Signal(p.Id, "TERM");
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>SIGKILL: the socket file stays behind, refusing connections.</summary>
    public async Task KillAsync()
    {
        await ThawAsync();
        if (_process is { HasExited: false } p)
        {
            Signal(p.Id, "KILL");
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>SIGSTOP: connections are accepted by the kernel, calls never answered (hung).</summary>
    public void Freeze()
    {
        if (_process is { HasExited: false } p)
        {
            Signal(p.Id, "STOP");
            _frozen = true;
        }
    }

    public async Task ThawAsync()
    {
        if (_frozen && _process is { HasExited: false } p)
        {
            Signal(p.Id, "CONT");
            _frozen = false;
            await Task.Delay(50);
        }
    }

    /// <summary>Starts containerd again on the same state, with or without its CRI plugin.</summary>
    public async Task RestartAsync(bool criEnabled)
    {
        await StopAsync();
        _channel?.Dispose();
        _channel = null;
        File.Delete(Socket); // a stale one from a SIGKILL
        WriteConfig(criEnabled);
        await StartProcessAsync(waitForCri: criEnabled);
    }

    private static void Signal(int pid, string signal) =>
        Run.ProcessAsync("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();

    public static GrpcChannel Channel(string socket) => GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        },
    });

    public async ValueTask DisposeAsync()
    {
        await ThawAsync();
        if (_process is { HasExited: false })
        {
            // The pods first, through CRI, while containerd can still clean up after them.
            try
            {
                var deadline = DateTime.UtcNow.AddSeconds(30);
                foreach (var c in (await Cri.ListContainersAsync(new ListContainersRequest(), deadline: deadline)).Containers)
                {
                    await Cri.StopContainerAsync(new StopContainerRequest { ContainerId = c.Id, Timeout = 0 }, deadline: deadline);
                    await Cri.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = c.Id }, deadline: deadline);
                }

                foreach (var p in (await Cri.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: deadline)).Items)
                {
                    await Cri.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = p.Id }, deadline: deadline);
                    await Cri.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = p.Id }, deadline: deadline);
                }
            }
            catch (RpcException ex)
            {
                await Console.Error.WriteLineAsync($"PrivateContainerd: could not remove pods through CRI ({ex.StatusCode}); cleaning up by hand");
            }

            try
            {
                await StopAsync();
            }
            catch (TimeoutException)
            {
                _process?.Kill();
            }
        }

        _channel?.Dispose();
        // After a crash: the recipe's hand clean-up, limited to what names this containerd's directories.
        var runc = _dir["runc/k8s.io"];
        if (Directory.Exists(runc))
        {
            await Run.ProcessAsync("/bin/sh", ["-c", $"for id in $(runc --root {runc} list -q); do runc --root {runc} delete --force $id; done"], TimeSpan.FromSeconds(60));
        }

        await TestProcesses.KillTreesAsync(cmdline => cmdline.Contains(_dir.Path, StringComparison.Ordinal));
        await Run.ProcessAsync("/bin/sh", ["-c",
            $"for f in {_dir.Path}/state/io.containerd.runtime.v2.task/k8s.io/*/address; do [ -f \"$f\" ] && s=$(sed 's|^unix://||' \"$f\") && [ -S \"$s\" ] && rm -f \"$s\"; done; "
            + $"grep -o ' {_dir.Path}[^ ]*' /proc/self/mountinfo | sort -r | while read m; do umount -l \"$m\"; done; "
            + $"for c in /sys/fs/cgroup/*/; do [ -d \"$c/tfa-ctrd/{_netns}\" ] && find \"$c/tfa-ctrd/{_netns}\" -depth -type d -exec rmdir {{}} \\; ; rmdir \"$c/tfa-ctrd\" 2>/dev/null; done; true"],
            TimeSpan.FromSeconds(60));
        await Run.ProcessAsync("ip", ["netns", "del", _netns], TimeSpan.FromSeconds(10));
        _process?.Dispose();
        _dir.Dispose();
    }
}
