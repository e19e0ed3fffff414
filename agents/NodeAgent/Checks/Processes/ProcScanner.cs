using System.Globalization;

namespace Toolforge.Agents.NodeAgent.Checks.Processes;

/// <summary>A process seen in uninterruptible sleep: pid, its start time (pid + start identify it across scans), comm, wchan, the network mount it waits on if one can be told.</summary>
public sealed record DProcess(int Pid, long StartTicks, string Comm, string Wchan, bool KernelThread, string? Mount);

/// <summary>
/// Reads /proc directly (no ps): per process only <c>stat</c> (state, comm, flags, start time), and for those in 'D'
/// also <c>wchan</c>, where its cwd and open files point (readlink only) and its own <c>mountinfo</c>. Never
/// <c>cmdline</c>, <c>environ</c> or <c>maps</c>: those take the process's memory lock, which a stuck process may hold,
/// and the reader would hang too.
/// <para>
/// The mount table is the stuck process's own (<c>/proc/PID/mountinfo</c>), not the reader's: the node-agent's unit
/// runs in a mount namespace of its own (PrivateTmp=, ProtectHome=), where a tenant's mount under /home or /tmp is not
/// seen, and a process in a container has its mounts in the container's namespace. The cwd and fd links name paths as
/// the process sees them, so they are matched against its table. Reading another user's <c>wchan</c>, <c>cwd</c> and
/// <c>fd</c> needs CAP_SYS_PTRACE (the kernel's ptrace read check); without it they read as "?" and no mount.
/// </para>
/// </summary>
public static class ProcScanner
{
    private const uint KernelThreadFlag = 0x00200000; // PF_KTHREAD
    // Filesystems whose answers come from elsewhere (a server, or a FUSE daemon in user space: sshfs, s3fs, rclone...):
    // the mounts a process in D is worth attributing to.
    private static readonly string[] NetworkFs = ["nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "9p", "fuse", "fuseblk"];

    public static (List<DProcess> Stuck, int Scanned) Scan(string procRoot, int maxFds = 64)
    {
        var found = new List<DProcess>();
        var scanned = 0;
        // One mount table per mount namespace (most processes share the host's), keyed by the ns link.
        var tables = new Dictionary<string, IReadOnlyList<(string Point, string Type)>>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(procRoot))
        {
            var name = Path.GetFileName(dir);
            if (name.Length == 0 || !char.IsAsciiDigit(name[0]) || !int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // the process ended between the listing and the read
            }

            scanned++;
            if (ParseStat(stat) is not { State: 'D' } s)
            {
                continue;
            }

            var mounts = MountsOf(dir, tables);
            found.Add(new DProcess(pid, s.StartTicks, s.Comm, ReadWchan(dir), (s.Flags & KernelThreadFlag) != 0, MountOf(dir, mounts, maxFds)));
        }

        return (found, scanned);
    }

    /// <summary>state, comm, flags and start time from /proc/PID/stat ("pid (comm) S ppid ..."; comm may hold spaces and parentheses).</summary>
    public static (char State, string Comm, uint Flags, long StartTicks)? ParseStat(string stat)
    {
        var open = stat.IndexOf('(', StringComparison.Ordinal);
        var close = stat.LastIndexOf(')');
        if (open < 0 || close < open || close + 2 >= stat.Length)
        {
            return null;
        }

        var comm = stat[(open + 1)..close];
        var fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state); flags is field 9, starttime field 22.
        if (fields.Length < 20 || fields[0].Length != 1
            || !uint.TryParse(fields[6], NumberStyles.None, CultureInfo.InvariantCulture, out var flags)
            || !long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
        {
            return null;
        }

        return (fields[0][0], comm, flags, start);
    }

    private static string ReadWchan(string dir)
    {
        try
        {
            var w = File.ReadAllText(Path.Combine(dir, "wchan")).Trim();
            return w is "" or "0" ? "?" : w;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }

    private static IReadOnlyList<(string Point, string Type)> MountsOf(string dir, Dictionary<string, IReadOnlyList<(string Point, string Type)>> tables)
    {
        var ns = Link(Path.Combine(dir, "ns", "mnt"));
        if (ns is not null && tables.TryGetValue(ns, out var known))
        {
            return known;
        }

        var table = NetworkMounts(Path.Combine(dir, "mountinfo"));
        if (ns is not null && table is not null)
        {
            tables[ns] = table;
        }

        return table ?? [];
    }

    /// <summary>Whether mounts of this type (mountinfo's field after "-") can hold a process in D waiting for another machine or a user-space daemon.</summary>
    public static bool IsNetworkFs(string type) =>
        NetworkFs.Contains(type, StringComparer.Ordinal) || type.StartsWith("fuse.", StringComparison.Ordinal);

    // Null when the table cannot be read (the process ended meanwhile): not remembered for its namespace.
    private static List<(string Point, string Type)>? NetworkMounts(string mountinfo)
    {
        var list = new List<(string, string)>();
        try
        {
            // mountinfo: "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - nfs4 server:/export rw,..."
            foreach (var line in File.ReadLines(mountinfo))
            {
                var parts = line.Split(' ');
                var dash = Array.IndexOf(parts, "-");
                if (parts.Length > 4 && dash > 0 && dash + 1 < parts.Length && IsNetworkFs(parts[dash + 1]))
                {
                    list.Add((Unescape(parts[4]), parts[dash + 1]));
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return list.OrderByDescending(m => m.Item1.Length).ToList();
    }

    // mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    private static string Unescape(string s) =>
        !s.Contains('\\', StringComparison.Ordinal) ? s
        : System.Text.RegularExpressions.Regex.Replace(s, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString(), System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromMilliseconds(100));

    private static string? MountOf(string dir, IReadOnlyList<(string Point, string Type)> mounts, int maxFds)
    {
        if (mounts.Count == 0)
        {
            return null;
        }

        var paths = new List<string>();
        if (Link(Path.Combine(dir, "cwd")) is { } cwd)
        {
            paths.Add(cwd);
        }

        try
        {
            // The fd numbers come from fdinfo/ (regular files), never from listing fd/: .NET's enumeration stats each
            // symlink it lists to learn whether it is a directory, and a stat through /proc/PID/fd/N follows the link
            // to the very file the process is stuck on (a FUSE or NFS inode whose server does not answer): the scan
            // would hang with it. fd/N is then only readlink'd.
            paths.AddRange(Directory.EnumerateFiles(Path.Combine(dir, "fdinfo")).Take(maxFds)
                .Select(f => Link(Path.Combine(dir, "fd", Path.GetFileName(f)))).OfType<string>());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // fdinfo is not readable (another user's process without CAP_SYS_PTRACE): cwd only
        }

        foreach (var path in paths)
        {
            foreach (var (point, type) in mounts)
            {
                if (path == point || path.StartsWith(point.EndsWith('/') ? point : point + "/", StringComparison.Ordinal))
                {
                    return $"{point} ({type})";
                }
            }
        }

        return null;
    }

    private static string? Link(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
