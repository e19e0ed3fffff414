using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Daemons under test get SIGHUP at its default, as systemd starts services: a test run started under nohup (or by a
/// runner that ignores SIGHUP) would hand its ignored SIGHUP down to every process it starts, .NET keeps a signal
/// ignored that it was started with ignored, and a coordinator's reload on SIGHUP would silently never happen.
/// </summary>
internal static partial class SignalDefaults
{
    private const int SIGHUP = 1;

#pragma warning disable CA2255 // on purpose: before any test of any assembly using this library starts a process
    [ModuleInitializer]
    internal static void Reset()
    {
        if (OperatingSystem.IsLinux() && File.ReadAllLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } line
            && ulong.TryParse(line["SigIgn:".Length..].Trim(), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var mask)
            && (mask & 1) != 0)
        {
            signal(SIGHUP, 0); // SIG_DFL: this process does not expect SIGHUP; the processes it starts inherit the default
        }
    }
#pragma warning restore CA2255

    [LibraryImport("libc")]
    private static partial nint signal(int sig, nint handler);
}
