using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Toolforge.Agents.Common.Hosting;

/// <summary>
/// Feeds systemd's watchdog: when the unit has WatchdogSec= set, systemd passes WATCHDOG_USEC (and WATCHDOG_PID)
/// and expects "WATCHDOG=1" at least that often. We send it every half interval, which is what sd_watchdog_enabled(3)
/// recommends. Microsoft.Extensions.Hosting.Systemd sends READY=1 and STOPPING=1 but not this.
/// </summary>
public sealed partial class SystemdWatchdog(ILogger<SystemdWatchdog> logger, TimeProvider time) : BackgroundService
{
    /// <summary>The interval systemd asked for, or null when the watchdog is off or meant for another process.</summary>
    public static TimeSpan? RequestedInterval(Func<string, string?> env, int pid)
    {
        if (!long.TryParse(env("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec <= 0)
        {
            return null;
        }

        var forPid = env("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(forPid) && forPid != pid.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }

        return TimeSpan.FromMicroseconds(usec);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = RequestedInterval(Environment.GetEnvironmentVariable, Environment.ProcessId);
        var notifier = new SystemdNotifier();
        if (interval is null || !notifier.IsEnabled)
        {
            return;
        }

        var period = interval.Value / 2;
        Log.WatchdogEnabled(logger, interval.Value.TotalSeconds, period.TotalSeconds);
        using var timer = new PeriodicTimer(period, time);
        do
        {
            notifier.Notify(new ServiceState("WATCHDOG=1"));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private static partial class Log
    {
        [LoggerMessage(1001, LogLevel.Information, "systemd watchdog every {WatchdogSeconds}s: sending WATCHDOG=1 every {PeriodSeconds}s")]
        public static partial void WatchdogEnabled(ILogger logger, double watchdogSeconds, double periodSeconds);
    }
}
