using System.Runtime.InteropServices;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// SIGHUP (`systemctl reload toolforge-coordinator`) re-reads the roles and the deny-list from the configuration file;
/// other settings need a restart. On Windows there is no SIGHUP: restart the service instead.
/// </summary>
public sealed partial class ReloadOnHangup(PolicyProvider policy, ILogger<ReloadOnHangup> logger) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsWindows())
        {
            if (HangupIgnored(ReadStatus()))
            {
                // .NET keeps a signal ignored that the process was started with ignored (nohup, a shell's trap): a
                // reload would then do nothing, silently. systemd starts services with it at its default.
                Log.HangupIgnored(logger);
            }

            _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // the default action of SIGHUP would end the process
                Log.Hangup(logger);
                _ = Task.Run(() =>
                {
                    try
                    {
                        policy.Reload();
                    }
                    catch (Exception ex)
                    {
                        Log.ReloadCrashed(logger, ex); // a bug: the old policy stays, and the trace says where
                    }
                });
            });
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Whether /proc/self/status (its "SigIgn:" mask, hexadecimal, bit 0 = signal 1) says SIGHUP is ignored; false when
    /// it cannot be told.
    /// </summary>
    internal static bool HangupIgnored(string? status)
    {
        var line = status?.Split('\n').FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null
            && ulong.TryParse(line["SigIgn:".Length..].Trim(), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var mask)
            && (mask & 1) != 0;
    }

    private static string? ReadStatus()
    {
        try
        {
            return File.ReadAllText("/proc/self/status");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // no /proc (not Linux): nothing to say
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
    }

    private static partial class Log
    {
        [LoggerMessage(2013, LogLevel.Information, "SIGHUP: reloading roles and deny-list")]
        public static partial void Hangup(ILogger logger);

        [LoggerMessage(2014, LogLevel.Error, "reload failed unexpectedly; the previous roles and deny-list stay in force")]
        public static partial void ReloadCrashed(ILogger logger, Exception ex);

        [LoggerMessage(2015, LogLevel.Warning, "SIGHUP is ignored in this process (it was started with it ignored, as nohup does): a reload will not re-read the roles and deny-list; restart to change them, or start it without nohup (systemd does)")]
        public static partial void HangupIgnored(ILogger logger);
    }
}
