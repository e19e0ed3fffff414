using System.Diagnostics;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A booted Debian container with real systemd, journald and the system D-Bus (systemd-nspawn --boot on the root
/// ./build.sh test makes once with debootstrap, with a tmpfs overlay so the root is never changed). Its /run/dbus is
/// bound to a host directory, so the host reaches its system bus at unix:path=DIR/system_bus_socket.
/// </summary>
public sealed class SystemdContainer : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly IReadOnlyList<string> _args;
    private readonly string? _merged;
    private Process _nspawn;

    private SystemdContainer(Process nspawn, TempDir dir, int leaderPid, IReadOnlyList<string> args, string? merged)
    {
        _nspawn = nspawn;
        _dir = dir;
        LeaderPid = leaderPid;
        _args = args;
        _merged = merged;
    }

    /// <summary>The container's init (its systemd); a new one after <see cref="BootAgainAsync"/>.</summary>
    public int LeaderPid { get; private set; }

    /// <summary>How many times this container has booted (1, then one more for each <see cref="BootAgainAsync"/>).</summary>
    public int Boots { get; private set; } = 1;

    public string BusAddress => $"unix:path={_dir["bus"]}/system_bus_socket";

    public string Root => Environment.GetEnvironmentVariable("TFA_NODE_ROOT") ?? "/var/tmp/tfa-node-root";

    /// <summary>
    /// Boots the container with the given unit files (name → content) in /etc/systemd/system. With
    /// <paramref name="keepState"/> the root is an overlay of the shared root with an upper directory of this container's
    /// own (mounted on the host, not nspawn's tmpfs --volatile=overlay): what is written inside (installed packages,
    /// /var/lib) survives the container's reboot, so <see cref="BootAgainAsync"/> boots the same machine again.
    /// </summary>
    public static async Task<SystemdContainer> BootAsync(IReadOnlyDictionary<string, string> units, IEnumerable<string>? extraArgs = null, bool keepState = false)
    {
        var root = Environment.GetEnvironmentVariable("TFA_NODE_ROOT") ?? "/var/tmp/tfa-node-root";
        if (!File.Exists(Path.Combine(root, "lib/systemd/systemd")))
        {
            throw Peer.Missing($"a debootstrapped systemd root at {root}", "./build.sh test makes it (debootstrap, once per machine)");
        }

        var nspawn = Peer.Require("systemd-nspawn", "systemd-container");
        var dir = new TempDir("nspawn");
        Directory.CreateDirectory(dir["bus"]);
        Directory.CreateDirectory(dir["units"]);
        string? merged = null;
        if (keepState)
        {
            foreach (var d in new[] { "upper", "work", "merged" })
            {
                Directory.CreateDirectory(dir[d]);
            }

            var mount = await Run.ProcessAsync("mount", ["-t", "overlay", "overlay", "-o", $"lowerdir={root},upperdir={dir["upper"]},workdir={dir["work"]}", dir["merged"]], TimeSpan.FromSeconds(30));
            if (mount.ExitCode != 0)
            {
                dir.Dispose();
                throw Peer.Missing("an overlay mount of the container's root", mount.ToString());
            }

            merged = dir["merged"];
        }

        var args = new List<string> { "-D", merged ?? root };
        if (merged is null)
        {
            args.Add("--volatile=overlay");
        }

        args.AddRange(["--boot", "--register=no", "--keep-unit", "-q", "--console=passive",
            "-M", "tfa" + Guid.NewGuid().ToString("N")[..8], $"--bind={dir["bus"]}:/run/dbus"]);
        foreach (var (name, content) in units)
        {
            await File.WriteAllTextAsync(dir[Path.Combine("units", name)], content);
            args.Add($"--bind-ro={dir[Path.Combine("units", name)]}:/etc/systemd/system/{name}");
        }

        args.AddRange(extraArgs ?? []);
        try
        {
            var (p, leader) = await StartAsync(nspawn, args, dir);
            return new SystemdContainer(p, dir, leader, args, merged);
        }
        catch
        {
            if (merged is null || await UnmountAsync(merged))
            {
                dir.Dispose(); // never deleted through a mount still in place: that would walk the Debian root
            }

            throw;
        }
    }

    /// <summary>
    /// Boots the same machine again once it ended by itself (a reboot asked inside it: see <see cref="ExitedAsync"/>):
    /// the same root with everything written there (only with keepState), the same binds and options.
    /// </summary>
    public async Task BootAgainAsync()
    {
        if (_merged is null)
        {
            throw new InvalidOperationException("only a container booted with keepState keeps its machine's state across a reboot");
        }

        if (!_nspawn.HasExited)
        {
            throw new InvalidOperationException("the container still runs");
        }

        File.Delete(Path.Combine(_dir["bus"], "system_bus_socket")); // the last boot's: the wait below is for the new bus
        var (p, leader) = await StartAsync(Peer.Require("systemd-nspawn", "systemd-container"), _args, _dir);
        _nspawn.Dispose();
        _nspawn = p;
        LeaderPid = leader;
        Boots++;
    }

    /// <summary>
    /// Where a file written inside the container (at <paramref name="inside"/>, absolute) is kept on the host, readable
    /// also while the container is down (only with keepState: the overlay's upper directory).
    /// </summary>
    public string WrittenPath(string inside) =>
        _merged is null ? throw new InvalidOperationException("only a container booted with keepState keeps what is written inside")
            : Path.Combine(_dir["upper"], inside.TrimStart('/'));

    private static async Task<(Process Nspawn, int Leader)> StartAsync(string nspawn, IReadOnlyList<string> args, TempDir dir)
    {
        var psi = new ProcessStartInfo(nspawn) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var sw = Stopwatch.StartNew();
        int leader = 0;
        var lastState = "no bus yet";
        // Two minutes: with every test project running at once on two cores, a boot has been seen to take over one.
        while (sw.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (p.HasExited)
            {
                throw Peer.Missing("systemd-nspawn", $"it exited with {p.ExitCode}");
            }

            // nspawn's first child can be its short-lived "outer child", not the container's init: ask again each
            // time until the child is systemd itself.
            leader = ChildOf(p.Id);
            if (leader != 0 && File.Exists(Path.Combine(dir["bus"], "system_bus_socket")))
            {
                var state = await InContainerAsync(leader, TimeSpan.FromSeconds(10), "systemctl", "is-system-running");
                lastState = state.Stdout.Trim();
                if (lastState is "running" or "degraded")
                {
                    return (p, leader);
                }

                lastState = $"{lastState} {state.Stderr.Trim()}".Trim();
            }

            await Task.Delay(200);
        }

        var jobs = leader == 0 ? "" : (await InContainerAsync(leader, TimeSpan.FromSeconds(10), "systemctl", "list-jobs", "--no-pager")).Stdout.Trim();
        p.Kill(entireProcessTree: true);
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)); // gone before the caller unmounts its root
        throw Peer.Missing("a booted systemd container", $"it did not reach 'running' within 120 s (state: {lastState}; jobs: {jobs.ReplaceLineEndings("; ")})");
    }

    private static int ChildOf(int pid)
    {
        var path = $"/proc/{pid}/task/{pid}/children";
        if (!File.Exists(path))
        {
            return 0;
        }

        foreach (var child in File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                if (File.ReadAllText($"/proc/{child}/comm").Trim() == "systemd")
                {
                    return int.Parse(child, System.Globalization.CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        return 0;
    }

    /// <summary>Runs a command inside the container (nsenter into all its namespaces).</summary>
    public Task<ProcessResult> ExecAsync(params string[] command) => InContainerAsync(LeaderPid, TimeSpan.FromMinutes(2), command);

    private static Task<ProcessResult> InContainerAsync(int leader, TimeSpan timeout, params string[] command) =>
        Run.ProcessAsync("nsenter", ["-t", leader.ToString(System.Globalization.CultureInfo.InvariantCulture), "-a", .. command], timeout);

    public async Task<string> SystemctlAsync(params string[] args) => (await ExecAsync(["systemctl", .. args])).Stdout.Trim();

    /// <summary>
    /// systemd-nspawn's exit code once the container ends by itself within <paramref name="timeout"/> (a reboot asked
    /// inside it ends nspawn with 133, a poweroff with 0), or null if it still runs.
    /// </summary>
    public async Task<int?> ExitedAsync(TimeSpan timeout)
    {
        try
        {
            await _nspawn.WaitForExitAsync().WaitAsync(timeout);
            return _nspawn.ExitCode;
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_nspawn.HasExited)
        {
            // SIGKILL to nspawn alone leaves the container's systemd running, re-parented to the host's PID 1. Killing
            // the container's init ends its whole PID namespace; nspawn then exits on its own.
            try
            {
                using var leader = Process.GetProcessById(LeaderPid);
                leader.Kill();
            }
            catch (ArgumentException)
            {
                // already gone
            }

            try
            {
                await _nspawn.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                _nspawn.Kill(entireProcessTree: true);
                try
                {
                    await _nspawn.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
                catch (TimeoutException)
                {
                    Console.Error.WriteLine($"SystemdContainer: nspawn {_nspawn.Id} still there 10 s after SIGKILL; unmounting anyway");
                }
            }
        }

        _nspawn.Dispose();
        // The container's mounts lived in its own mount namespace; the overlay itself is the host's. Its directory is
        // deleted only once the overlay is gone (a recursive delete through it would walk the Debian root).
        if (_merged is null || await UnmountAsync(_merged))
        {
            _dir.Dispose();
        }
    }

    /// <summary>Unmounts the kept-state overlay: tried three times, then lazily; true once it is no longer mounted.</summary>
    private static async Task<bool> UnmountAsync(string merged)
    {
        for (var attempt = 0; attempt < 3 && IsMounted(merged); attempt++)
        {
            var r = await Run.ProcessAsync("umount", [merged], TimeSpan.FromSeconds(30));
            if (r.ExitCode != 0)
            {
                await Task.Delay(1000); // EBUSY: a process of the container may still be leaving
            }
        }

        if (IsMounted(merged))
        {
            await Run.ProcessAsync("umount", ["-l", merged], TimeSpan.FromSeconds(30));
        }

        return !IsMounted(merged);
    }

    private static bool IsMounted(string path) =>
        File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is { Length: > 4 } f && f[4] == path);
}
