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
    }
}
