using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>Processes in uninterruptible sleep on the real kernel (a task in a frozen cgroup-v1 freezer shows 'D').</summary>
public sealed partial class StuckProcessTests
{
    private static StuckProcessCheck Check(FakeTimeProvider time, Common.Reporting.AgentState state, Action<StuckProcessesOptions>? edit = null) =>
        new(Support.Options(Edited(new StuckProcessesOptions { After = TimeSpan.FromMinutes(2), Warning = 1, Failing = 3 }, edit)), state, time, NullLogger<StuckProcessCheck>.Instance);

    private static StuckProcessesOptions Edited(StuckProcessesOptions o, Action<StuckProcessesOptions>? edit)
    {
        edit?.Invoke(o);
        return o;
    }

    [Fact]
    public void Stat_IsParsedPastACommWithSpacesAndParentheses()
    {
        var s = ProcScanner.ParseStat("4242 (a) b (c) D 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")!;
        Assert.Equal('D', s.Value.State);
        Assert.Equal("a) b (c", s.Value.Comm);
        Assert.Equal(4194560u, s.Value.Flags);
        Assert.Equal(123456, s.Value.StartTicks);
        Assert.Null(ProcScanner.ParseStat("garbage"));
    }
    /// <summary>
    /// The mount a process waits on is found in its own mount table (/proc/PID/mountinfo), matched against its cwd and
    /// open files: a /proc laid out in a directory, where the reader's own table (self) holds none of those mounts, as
    /// the node-agent's unit namespace does not (ProtectHome=, PrivateTmp=). Any FUSE mount counts; a local one does not.
    /// The real kernel case (another user's process on a FUSE mount, under the installed unit) is DeployTests'.
    /// </summary>
    [Fact]
    public void TheMount_IsTheProcesssOwn_FromItsCwdOrItsFiles_LongestMountPointFirst()
    {
        using var proc = new TempDir("fakeproc");
        const string Table = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            40 22 0:50 / /srv/tools rw,nosuid,nodev,relatime shared:20 - fuse.sshfs tools@nfs:/srv rw,user_id=0
            41 40 0:51 / /srv/tools/deep rw,relatime shared:21 - nfs4 nfs:/deep rw
            42 22 0:52 / /home/tool\040a rw,relatime shared:22 - nfs4 nfs:/home rw
            43 22 0:53 / /mnt/hello rw,nosuid,nodev,relatime shared:23 - fuse.hello hello rw,user_id=1000
            44 22 0:54 / /data rw,relatime shared:24 - xfs /dev/sdb rw
            """;
        void Process(int pid, string cwd, params string[] fds)
        {
            var dir = proc[pid.ToString(System.Globalization.CultureInfo.InvariantCulture)];
            Directory.CreateDirectory(Path.Combine(dir, "fd"));
            Directory.CreateDirectory(Path.Combine(dir, "fdinfo"));
            Directory.CreateDirectory(Path.Combine(dir, "ns"));
            File.WriteAllText(Path.Combine(dir, "stat"), $"{pid} (reader) D 1 {pid} {pid} 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 {pid}00 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0");
            File.WriteAllText(Path.Combine(dir, "wchan"), "request_wait_answer");
            File.WriteAllText(Path.Combine(dir, "mountinfo"), Table);
            File.CreateSymbolicLink(Path.Combine(dir, "cwd"), cwd);
            File.CreateSymbolicLink(Path.Combine(dir, "ns", "mnt"), "mnt:[4026532000]");
            for (var i = 0; i < fds.Length; i++)
            {
                File.CreateSymbolicLink(Path.Combine(dir, "fd", i.ToString(System.Globalization.CultureInfo.InvariantCulture)), fds[i]);
                File.WriteAllText(Path.Combine(dir, "fdinfo", i.ToString(System.Globalization.CultureInfo.InvariantCulture)), "pos:\t0\nflags:\t0100000\n");
            }
        }

        Directory.CreateDirectory(proc["self"]);
        File.WriteAllText(Path.Combine(proc["self"], "mountinfo"), "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
        Process(101, "/srv/tools/project");
        Process(102, "/srv/tools/deep/x");
        Process(103, "/", "/dev/null", "/home/tool a/notes.txt");
        Process(104, "/mnt/hello");
        Process(105, "/data/local", "/data/local/file");
        Process(106, "/srv/toolsbox");

        var (stuck, scanned) = ProcScanner.Scan(proc.Path);
        var mounts = stuck.ToDictionary(p => p.Pid, p => p.Mount);
        Assert.Equal(6, scanned);
        Assert.Equal("/srv/tools (fuse.sshfs)", mounts[101]);
        Assert.Equal("/srv/tools/deep (nfs4)", mounts[102]);
        Assert.Equal("/home/tool a (nfs4)", mounts[103]);
        Assert.Equal("/mnt/hello (fuse.hello)", mounts[104]);
        Assert.Null(mounts[105]);
        Assert.Null(mounts[106]);
        Assert.All(stuck, p => Assert.Equal("request_wait_answer", p.Wchan));
    }

    [Theory]
    [InlineData("nfs4", true)]
    [InlineData("fuse", true)]
    [InlineData("fuse.sshfs", true)]
    [InlineData("fuse.hello", true)]
    [InlineData("fusectl", false)]
    [InlineData("ext4", false)]
    [InlineData("tmpfs", false)]
    public void WhichFilesystems_CanHoldAProcessForAnotherMachineOrDaemon(string type, bool expected) =>
        Assert.Equal(expected, ProcScanner.IsNetworkFs(type));
}
