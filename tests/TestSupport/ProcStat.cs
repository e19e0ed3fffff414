using System.Globalization;

namespace Toolforge.Agents.TestSupport;

/// <summary>What /proc says of a process the benchmarks and tests started: its CPU time and its memory figures.</summary>
public static class ProcStat
{
    /// <summary>User + system CPU seconds: /proc/PID/stat fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after the ")" of comm, which may hold spaces
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>A kB figure of /proc/PID/status ("VmRSS:", "VmHWM:", "RssAnon:" …).</summary>
    public static long StatusKb(int pid, string field) => Kb($"/proc/{pid}/status", field);

    /// <summary>A kB figure of /proc/PID/smaps_rollup ("Rss:", "Anonymous:", "Pss_File:" …).</summary>
    public static long RollupKb(int pid, string field) => Kb($"/proc/{pid}/smaps_rollup", field);

    private static long Kb(string file, string field) =>
        File.ReadLines(file).Where(l => l.StartsWith(field, StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture)).Single();
}
