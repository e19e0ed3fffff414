using System.Globalization;

namespace Toolforge.Agents.Common.Hosting;

/// <summary>
/// Signals this process was started with ignored (nohup ignores SIGHUP): .NET keeps an inherited SIG_IGN, so a
/// handler registered for such a signal never runs. Read from /proc/self/status ("SigIgn:", a hexadecimal mask, bit
/// N-1 for signal N).
/// </summary>
public static class InheritedSignals
{
    public const int Hangup = 1;

    /// <summary>Whether <paramref name="signal"/> is ignored in this process; false when it cannot be told (no /proc).</summary>
    public static bool Ignored(int signal)
    {
        string? status;
        try
        {
            status = File.ReadAllText("/proc/self/status");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            status = null; // no /proc (not Linux): nothing to tell
        }

        return Ignored(signal, status);
    }

    /// <summary>Whether a /proc/PID/status text says <paramref name="signal"/> is ignored; false when it cannot be told.</summary>
    public static bool Ignored(int signal, string? status)
    {
        var line = status?.Split('\n').FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null
            && ulong.TryParse(line["SigIgn:".Length..].Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mask)
            && (mask & (1UL << (signal - 1))) != 0;
    }
}
