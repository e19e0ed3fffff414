using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Reporting;

/// <summary>
/// The connection to the coordinator an agent reports on, made once from <see cref="ReportingOptions"/>. With several
/// addresses (instances without a load balancer) each agent starts at a random one, so agents spread, and moves to the
/// next when a call finds its instance unreachable.
/// </summary>
public sealed class CoordinatorConnection : IDisposable
{
    private readonly IReadOnlyList<string> _addresses;
    private readonly GrpcChannel?[] _channels;
    private readonly object _lock = new();
    private Identity? _identity;
    private int _current;

    private readonly Tls.ReloadingFiles<Identity> _files;

    public CoordinatorConnection(IOptions<ReportingOptions> options, ILogger<CoordinatorConnection>? logger = null, TimeProvider? time = null)
    {
        var o = options.Value;
        _files = new Tls.ReloadingFiles<Identity>([o.Certificate, o.Key, o.CaBundle], () =>
        {
            var cert = Tls.Certificates.LoadWithKey(o.Certificate, o.Key);
            return new Identity(cert, Tls.Certificates.LoadBundle(o.CaBundle), o.Node.Length > 0 ? o.Node : Tls.Certificates.Identity(cert));
        }, reason =>
        {
            if (logger is not null)
            {
                ConnectionLog.NotReloaded(logger, reason);
            }
        }, time);
        Options = options.Value;
        _addresses = Options.AllAddresses;
        _channels = new GrpcChannel?[_addresses.Count];
        _current = _addresses.Count > 1 ? Random.Shared.Next(_addresses.Count) : 0;
    }

    private sealed record Identity(System.Security.Cryptography.X509Certificates.X509Certificate2 Cert,
        System.Security.Cryptography.X509Certificates.X509Certificate2Collection Ca, string Node);

    /// <summary>How many times the certificate, key or CA files were loaded again after a change (a renewal).</summary>
    public int Reloads { get; private set; }

    // The files as they are now (each one's length and last write): a renewal replaces them.

    /// <summary>
    /// The certificate, key and CA, loaded again when a file changed (puppet's renewal writes a new key and then a new
    /// certificate; common <see cref="Tls.ReloadingFiles{T}"/>, looked at once a second): the channels made with the old
    /// ones are closed, so the next call presents the new certificate. While the files do not make a pair yet, the
    /// loaded pair stays in use (said once). The old certificate is not disposed: a handshake may still use it.
    /// Called under <see cref="_lock"/>.
    /// </summary>
    private Identity Current()
    {
        var current = _files.Current;
        if (ReferenceEquals(current, _identity))
        {
            return current;
        }

        if (_identity is not null)
        {
            Reloads++;
            for (var i = 0; i < _channels.Length; i++)
            {
                _channels[i]?.Dispose();
                _channels[i] = null;
            }
        }

        _identity = current;
        return current;
    }

    public ReportingOptions Options { get; }

    public bool Enabled => Options.Enabled;

    /// <summary>The node name this agent reports for.</summary>
    public string Node
    {
        get
        {
            if (!Enabled)
            {
                return Environment.MachineName;
            }

            lock (_lock)
            {
                return Current().Node;
            }
        }
    }

    /// <summary>The address calls go to now.</summary>
    public string Address
    {
        get
        {
            lock (_lock)
            {
                return _addresses.Count == 0 ? string.Empty : _addresses[_current];
            }
        }
    }

    public AgentService.AgentServiceClient AgentClient()
    {
        lock (_lock)
        {
            var id = Current();
            return new(_channels[_current] ??= CoordinatorChannel.Create(_addresses[_current], id.Cert, id.Ca, Options.CallTimeout));
        }
    }

    /// <summary>
    /// A call failed: when the instance could not be reached (UNAVAILABLE, DEADLINE_EXCEEDED), the next call goes to
    /// the next address. Other failures (refused, invalid) are the instance's answer and stay where they are.
    /// </summary>
    public void Failed(StatusCode status)
    {
        if (status is not (StatusCode.Unavailable or StatusCode.DeadlineExceeded) || _addresses.Count < 2)
        {
            return;
        }

        lock (_lock)
        {
            _current = (_current + 1) % _addresses.Count;
        }
    }

    public DateTime Deadline() => DateTime.UtcNow.Add(Options.CallTimeout);

    public void Dispose()
    {
        foreach (var c in _channels)
        {
            c?.Dispose();
        }
    }
}

/// <summary>
/// Sends the agent's full state to the coordinator every heartbeat interval (which the coordinator chooses) and at
/// once when something changed. Failures are logged once per streak and retried with backoff; the state is kept,
/// so nothing is lost while the coordinator is away, and the first report after a restart carries everything.
/// </summary>
public sealed partial class ReportingService(
    AgentState state,
    CoordinatorConnection connection,
    DaemonInfo daemon,
    TimeProvider time,
    ILogger<ReportingService> logger,
    IHostApplicationLifetime? lifetime = null) : BackgroundService
{
    /// <summary>How long the first report waits for the agent's checks to say they exist (every hosted service started).</summary>
    public static readonly TimeSpan StartWait = TimeSpan.FromSeconds(10);

    private static readonly Counter Reports = Metrics.CreateCounter(
        "toolforge_agent_reports_total", "Reports sent to the coordinator, by result.", "result");

    /// <summary>Never report more often than this, even when checks change faster.</summary>
    public static readonly TimeSpan MinimumGap = TimeSpan.FromMilliseconds(500);

    /// <summary>Between reports that failed: 1 s doubling, at most 60 s (and never longer than the heartbeat).</summary>
    public static readonly RetryBounds Retry = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(60));

    public TimeSpan Interval { get; private set; }

    public DateTimeOffset? LastSuccess { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!connection.Enabled)
        {
            Log.Disabled(logger);
            return;
        }

        Interval = connection.Options.InitialInterval;

        // The first report after every check said it exists (they do as they start): it then names each of them, those
        // not run yet without a verdict, so none is taken for turned off and none of its findings resolved.
        if (lifetime is not null && !lifetime.ApplicationStarted.IsCancellationRequested)
        {
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            {
                try
                {
                    await started.Task.WaitAsync(StartWait, time, stoppingToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // reported anyway: a late check is in the next report
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        string Describe(Exception ex) => RpcFailure.Describe((RpcException)ex, connection.Address, connection.Options.CallTimeout, RpcFailure.DaemonKeys);
        var streak = new RetryStreak(Retry, time,
            (ex, _) => Log.ReportFailed(logger, connection.Address, Describe(ex)),
            (failures, _) => Log.Reporting(logger, connection.Address, connection.Node, Interval.TotalSeconds, failures));
        var announced = false;
        var lastDropped = 0;
        var reconnectWindow = TimeSpan.Zero; // from the coordinator's last answer: it outlives the coordinator's restart
        while (!stoppingToken.IsCancellationRequested)
        {
            var report = state.Snapshot(out var events);
            report.Node = connection.Node;
            report.Agent = daemon.Kind;
            report.AgentVersion = DaemonInfo.Version;
            var dropped = ReportFitter.Fit(report);
            if (dropped != lastDropped)
            {
                if (dropped > 0)
                {
                    Log.FindingsCut(logger, dropped, Contracts.ReportLimits.MaxFindings);
                }

                lastDropped = dropped;
            }

            try
            {
                var response = await connection.AgentClient().ReportAsync(report, deadline: connection.Deadline(), cancellationToken: stoppingToken).ConfigureAwait(false);
                state.AcknowledgeEvents(events);
                state.SetAcknowledged(response.Acknowledged);
                if (Bounded(response.HeartbeatInterval) is { } hb)
                {
                    Interval = hb;
                }

                if (Bounded(response.ReconnectWindow) is { } rw)
                {
                    reconnectWindow = rw;
                }

                Reports.WithLabels("ok").Inc();
                LastSuccess = time.GetUtcNow();
                if (!streak.Succeeded() && !announced)
                {
                    Log.Reporting(logger, connection.Address, connection.Node, Interval.TotalSeconds, 0);
                }

                announced = true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && stoppingToken.IsCancellationRequested)
            {
                break; // stopping: the report in flight was cancelled, which is not a failure (exit code 0)
            }
            catch (RpcException ex) when (!stoppingToken.IsCancellationRequested)
            {
                Reports.WithLabels(ex.StatusCode.ToString()).Inc();
                connection.Failed(ex.StatusCode);
                var streakGoesOn = streak.Failing;
                var wait = NextWait(ex, streak.Failed(ex), streakGoesOn, reconnectWindow, Random.Shared); // the first failure of a streak is said
                if (streakGoesOn && ex.StatusCode is StatusCode.PermissionDenied or StatusCode.InvalidArgument)
                {
                    Log.ReportFailed(logger, connection.Address, Describe(ex)); // a refusal is said every time: an admin must act
                }

                // RESOURCE_EXHAUSTED (too many reports), UNAVAILABLE and the rest: wait the coordinator's hint, or a
                // jittered, growing while, never longer than the heartbeat, and send the whole state again.
                await WaitAsync(wait < Interval ? wait : Interval, stoppingToken, onlyTime: true).ConfigureAwait(false);
                continue;
            }

            await WaitAsync(Interval, stoppingToken).ConfigureAwait(false);
        }
    }

    /// <summary>No hint, heartbeat or window from the coordinator is taken beyond this (a wrong one must not park the agent).</summary>
    public static readonly TimeSpan LongestWait = TimeSpan.FromHours(1);

    /// <summary>
    /// A duration the coordinator sent, as a time to wait: null when absent, not positive or not a valid protobuf
    /// Duration (ToTimeSpan throws on one that is not normalized — a daemon must not die of its coordinator's answer);
    /// at most <see cref="LongestWait"/>.
    /// </summary>
    public static TimeSpan? Bounded(Google.Protobuf.WellKnownTypes.Duration? d)
    {
        if (d is null)
        {
            return null;
        }

        TimeSpan t;
        try
        {
            t = d.ToTimeSpan();
        }
        catch (InvalidOperationException)
        {
            return null;
        }

        return t <= TimeSpan.Zero ? null : t < LongestWait ? t : LongestWait;
    }

    /// <summary>
    /// How long to wait after a failed report: the coordinator's retry hint when it gave one (the
    /// <see cref="Contracts.ContractNames.RetryPushbackTrailer"/> trailer, bounded by <see cref="LongestWait"/>);
    /// else, at the first failure of a streak that found the coordinator gone (UNAVAILABLE, DEADLINE_EXCEEDED), a uniformly random moment of the reconnect window the coordinator last
    /// told (full jitter: a fleet whose coordinator restarted comes back spread over it) when that is longer than the
    /// backoff; else the backoff. The caller still never waits longer than the heartbeat.
    /// </summary>
    public static TimeSpan NextWait(RpcException ex, TimeSpan backoff, bool streakGoesOn, TimeSpan reconnectWindow, Random random)
    {
        if (ex.Trailers.GetValue(Contracts.ContractNames.RetryPushbackTrailer) is { } hint
            && long.TryParse(hint, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms))
        {
            var after = TimeSpan.FromMilliseconds(Math.Min(ms, (long)LongestWait.TotalMilliseconds));
            return after > MinimumGap ? after : MinimumGap;
        }

        if (!streakGoesOn && reconnectWindow > backoff && ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            return TimeSpan.FromMilliseconds(random.NextDouble() * reconnectWindow.TotalMilliseconds);
        }

        return backoff;
    }

    private async Task WaitAsync(TimeSpan wait, CancellationToken stoppingToken, bool onlyTime = false)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        cts.CancelAfter(wait);
        try
        {
            if (onlyTime)
            {
                // After a failure a change must not cut the backoff short: that is what makes a flood.
                await Task.Delay(wait < MinimumGap ? MinimumGap : wait, time, stoppingToken).ConfigureAwait(false);
                return;
            }

            await Task.Delay(MinimumGap, time, stoppingToken).ConfigureAwait(false);
            await state.WaitForChangeAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // the interval passed without a change: time for the heartbeat
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1201, LogLevel.Information, "no Coordinator:Address configured: not reporting")]
        public static partial void Disabled(ILogger logger);

        [LoggerMessage(1202, LogLevel.Information, "reporting to {Address} as {Node} every {IntervalSeconds}s (after {Failures} failed attempts)")]
        public static partial void Reporting(ILogger logger, string address, string node, double intervalSeconds, int failures);

        [LoggerMessage(1204, LogLevel.Warning, "{Dropped} findings were not sent: a report carries at most {Max}; a findings-truncated finding says so")]
        public static partial void FindingsCut(ILogger logger, int dropped, int max);

        [LoggerMessage(1203, LogLevel.Warning, "report to {Address} failed: {Detail}; retrying")]
        public static partial void ReportFailed(ILogger logger, string address, string detail);
    }
}

public static class ReportingRegistration
{
    /// <summary>AgentState, the coordinator connection (section "Coordinator") and the reporting loop.</summary>
    public static IServiceCollection AddReporting(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<ReportingOptions>(configuration, ReportingOptions.Section, (c, o) => c.Bind(o));
        services.TryAddSingleton<AgentState>();
        services.TryAddSingleton<CoordinatorConnection>();
        services.AddSingleton<ReportingService>();
        services.AddHostedService(sp => sp.GetRequiredService<ReportingService>());
        return services;
    }
}

internal static partial class ConnectionLog
{
    [LoggerMessage(1205, LogLevel.Warning, "Coordinator:Certificate/Key/CaBundle changed but do not load yet ({Reason}); still using the pair loaded before, trying again when they change")]
    public static partial void NotReloaded(ILogger logger, string reason);
}
