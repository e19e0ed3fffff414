using System.Globalization;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Processes a test left behind, found through /proc: a container's shim daemonizes (its parent becomes PID 1), so
/// killing the dockerd or containerd that started it leaves it running unless it is found by what it was started with.
/// </summary>
public static class TestProcesses
{
    public sealed record Entry(int Pid, int ParentPid, string CommandLine);

    public static IReadOnlyList<Entry> All()
    {
        var list = new List<Entry>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // pid (comm) state ppid ...; comm may hold spaces and parentheses, so read after the last ')'.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                list.Add(new Entry(pid, int.Parse(fields[1], CultureInfo.InvariantCulture), cmdline));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // the process ended while we looked
            }
        }

        return list;
    }

    /// <summary>Kills (SIGKILL) every process whose command line matches, with all its descendants; returns how many.</summary>
    public static async Task<int> KillTreesAsync(Func<string, bool> match)
    {
        var all = All();
        var children = all.ToLookup(e => e.ParentPid);
        var doomed = new List<int>();
        void Collect(int pid)
        {
            doomed.Add(pid);
            foreach (var c in children[pid])
            {
                Collect(c.Pid);
            }
        }

        foreach (var e in all.Where(e => e.Pid != Environment.ProcessId && match(e.CommandLine)))
        {
            Collect(e.Pid);
        }

        foreach (var pid in doomed.Distinct())
        {
            await Run.ProcessAsync("kill", ["-9", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5));
        }

        return doomed.Distinct().Count();
    }
}
