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
        if (OperatingSystem.IsLinux() && Common.Hosting.InheritedSignals.Ignored(SIGHUP))
        {
            signal(SIGHUP, 0); // SIG_DFL, what the processes this one starts inherit
            // ...while this process still survives a SIGHUP (what nohup was for: a closed terminal, an orphaned process
            // group with a stopped member): a caught signal is reset to its default across exec, so children still
            // start with the default.
            _keepAlive = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);
        }
    }

    private static PosixSignalRegistration? _keepAlive;
#pragma warning restore CA2255

    [LibraryImport("libc")]
    private static partial nint signal(int sig, nint handler);
}
