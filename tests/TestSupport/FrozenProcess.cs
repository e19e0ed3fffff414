using System.Diagnostics;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A process held in uninterruptible sleep on purpose: a `sleep` in a cgroup-v1 freezer cgroup of the test's own,
/// frozen (the kernel shows such a task in state D, wchan __refrigerator). <see cref="Thaw"/> releases it; disposing
/// thaws, kills it by pid and removes the cgroup.
/// </summary>
public sealed class FrozenProcess : IAsyncDisposable
{
    private const string FreezerRoot = "/sys/fs/cgroup/freezer";
    private readonly string _cgroup;
    private readonly string _root;
    private readonly Process _process;

    private FrozenProcess(string root, string cgroup, Process process) => (_root, _cgroup, _process) = (root, cgroup, process);

    public int Pid => _process.Id;

    /// <param name="comm">The process's name as the kernel shows it (/proc/PID/comm): a shell that names itself so and
    /// waits on its standard input, instead of `sleep`.</param>
    /// <param name="workingDirectory">The process's cwd (a directory on a mount makes it a process "on" that mount).</param>
    /// <param name="nested">A path below the test's own freezer cgroup to put it in (e.g. "kubepods/besteffort/pod" + a
    /// pod's UID: /proc/PID/cgroup then names the pod as the kubelet's cgroups do).</param>
    public static async Task<FrozenProcess> StartAsync(string? comm = null, string? workingDirectory = null, string? nested = null)
    {
        if (!File.Exists(Path.Combine(FreezerRoot, "freezer.state")) && !Directory.Exists(FreezerRoot))
        {
            throw Peer.Missing("the cgroup-v1 freezer at /sys/fs/cgroup/freezer", "mount -t cgroup -o freezer cgroup /sys/fs/cgroup/freezer (as root)");
        }

        var root = Path.Combine(FreezerRoot, "tfa-test-" + Guid.NewGuid().ToString("N")[..10]);
        var cgroup = nested is null ? root : Path.Combine(root, nested);
        Directory.CreateDirectory(cgroup);
        var process = comm is null
            ? Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false, WorkingDirectory = workingDirectory ?? string.Empty })!
            : Process.Start(new ProcessStartInfo("sh", ["-c", "printf %s \"$1\" > /proc/$$/comm && read x", "sh", comm]) { UseShellExecute = false, RedirectStandardInput = true, WorkingDirectory = workingDirectory ?? string.Empty })!;
        if (comm is not null && !await Peer.EventuallyAsync(() => File.ReadAllText($"/proc/{process.Id}/comm").TrimEnd('\n') == comm, TimeSpan.FromSeconds(10)))
        {
            process.Kill();
            throw new InvalidOperationException($"pid {process.Id} did not take the name {comm}");
        }

        var frozen = new FrozenProcess(root, cgroup, process);
        await File.WriteAllTextAsync(Path.Combine(cgroup, "cgroup.procs"), process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await File.WriteAllTextAsync(Path.Combine(cgroup, "freezer.state"), "FROZEN");
        if (!await Peer.EventuallyAsync(() => frozen.State() == 'D', TimeSpan.FromSeconds(10)))
        {
            await frozen.DisposeAsync();
            throw new InvalidOperationException($"pid {process.Id} did not enter state D in the freezer (state {frozen.State()})");
        }

        return frozen;
    }

    /// <summary>The state letter of /proc/PID/stat.</summary>
    public char State()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    public Task ThawAsync() => File.WriteAllTextAsync(Path.Combine(_cgroup, "freezer.state"), "THAWED");

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ThawAsync();
        }
        catch (IOException)
        {
            // the cgroup is gone already
        }

        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        // The leaf first, then each parent up to the test's own cgroup (cgroup directories are removed one by one).
        for (var dir = _cgroup; dir.Length >= _root.Length; dir = Path.GetDirectoryName(dir)!)
        {
            for (var i = 0; i < 50 && Directory.Exists(dir); i++)
            {
                try
                {
                    Directory.Delete(dir);
                }
                catch (IOException)
                {
                    await Task.Delay(100); // the killed task leaves the cgroup a moment later
                }
            }
        }
    }
}
