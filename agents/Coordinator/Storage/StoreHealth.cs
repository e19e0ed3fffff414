using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// Whether the store answers: pinged every second (each ping bounded by a timeout, so a hung database reads as down)
/// and marked down at once when a write finds it unavailable. The gRPC health service reports it (NOT_SERVING while
/// down), and so does the haproxy agent check; it comes back by itself when a ping succeeds again.
/// </summary>
public sealed partial class StoreHealth(IStoreEngine store, TimeProvider time, ILogger<StoreHealth> logger) : BackgroundService, IHealthCheck
{
    private static readonly Gauge Up = Metrics.CreateGauge("toolforge_coordinator_store_up", "1 while the coordinator's database answers, else 0.");
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(3);

    private volatile bool _ready; // migrated and loaded (StoreStartup): until then NOT_SERVING whatever the pings say
    private volatile bool _healthy;
    private volatile string _reason = "starting: the database has not been reached yet";

    public bool Healthy => _healthy;

    public string Reason => _reason;

    public void MarkUnavailable(string reason) => Set(false, reason);

    /// <summary>The store is migrated and loaded: serving from now on while the pings succeed (no line: StoreStartup logs).</summary>
    public void MarkReady()
    {
        _ready = true;
        _reason = string.Empty;
        _healthy = true;
        Up.Set(1);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Up.Set(_healthy ? 1 : 0);
        using var timer = new PeriodicTimer(Every, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (!_ready)
            {
                continue; // StoreStartup is trying (and said so once)
            }

            var ping = Task.Run(store.Ping, stoppingToken);
            var problem = await Task.WhenAny(ping, Task.Delay(PingTimeout, time, stoppingToken)).ConfigureAwait(false) == ping
                ? await ping.ConfigureAwait(false)
                : $"no answer within {PingTimeout.TotalSeconds:0} s";
            Set(problem is null, problem ?? string.Empty);
        }
    }

    private void Set(bool healthy, string reason)
    {
        if (!_ready)
        {
            Up.Set(0);
            return; // not started yet: StoreStartup said so once
        }

        var was = _healthy;
        _reason = reason;
        _healthy = healthy;
        Up.Set(healthy ? 1 : 0);
        if (was && !healthy)
        {
            Log.Down(logger, store.Location, reason);
        }
        else if (!was && healthy)
        {
            Log.Up(logger, store.Location);
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_healthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy(_reason));

    private static partial class Log
    {
        [LoggerMessage(2801, LogLevel.Error, "database {Location} unavailable ({Reason}): health NOT_SERVING, writes refused with UNAVAILABLE until it answers again")]
        public static partial void Down(ILogger logger, string location, string reason);

        [LoggerMessage(2802, LogLevel.Information, "database {Location} answers again: serving")]
        public static partial void Up(ILogger logger, string location);
    }
}
