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
            if (Common.Hosting.InheritedSignals.Ignored(Common.Hosting.InheritedSignals.Hangup))
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
