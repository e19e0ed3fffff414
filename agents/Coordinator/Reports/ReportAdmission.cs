using Grpc.Core;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Toolforge.Agents.Coordinator.Reports;

/// <summary>
/// Admission of reports: at most <see cref="IngestOptions.ReportsInFlight"/> wait for the database at once (beyond,
/// RESOURCE_EXHAUSTED with a retry hint, never an unbounded queue), and the reconnect window told to agents, which
/// grows with the fleet so a restarted coordinator is not met by every agent in the same second.
/// </summary>
public sealed partial class ReportAdmission(IOptions<IngestOptions> options, IOptions<State.StateOptions> state, TimeProvider time, ILogger<ReportAdmission> logger)
{
    /// <summary>Shedding is said at most this often (a storm of refusals is one line, with how many).</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromMinutes(1);

    public const string PushbackTrailer = Common.Contracts.ContractNames.RetryPushbackTrailer;

    private static readonly Gauge InFlight = Metrics.CreateGauge(
        "toolforge_coordinator_reports_in_flight", "Reports received and not yet stored.");

    private int _inFlight;
    private long _shed;
    private long _saidAt = long.MinValue;

    public int Limit => options.Value.ReportsInFlight;

    /// <summary>Reports waiting for the database now.</summary>
    public int Waiting => Volatile.Read(ref _inFlight);

    /// <summary>Takes a place for one report; false when <see cref="Limit"/> are already waiting for the database.</summary>
    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _inFlight) > Limit)
        {
            Interlocked.Decrement(ref _inFlight);
            var shed = Interlocked.Increment(ref _shed);
            var now = time.GetTimestamp();
            var said = Interlocked.Read(ref _saidAt);
            if ((said == long.MinValue || time.GetElapsedTime(said, now) >= Quiet) && Interlocked.CompareExchange(ref _saidAt, now, said) == said)
            {
                Log.Shedding(logger, Limit, Interlocked.Exchange(ref _shed, 0));
            }

            return false;
        }

        InFlight.Inc();
        return true;
    }

    public void Exit()
    {
        Interlocked.Decrement(ref _inFlight);
        InFlight.Dec();
    }

    /// <summary>Known nodes / ReconnectRate, at least 1 s, at most the heartbeat (an agent never waits longer than that anyway).</summary>
    public TimeSpan Window(int nodes)
    {
        var heartbeat = state.Value.HeartbeatInterval;
        var window = TimeSpan.FromSeconds(Math.Max(1, nodes / options.Value.ReconnectRate));
        return window < heartbeat ? window : heartbeat;
    }

    /// <summary>
    /// The hint for a report refused because too many wait: a uniformly random moment between half the window and the
    /// whole of it, the window taken as at least 2 s (the refused are spread, never sent back together), so 1 s..window.
    /// </summary>
    public TimeSpan Pushback(int nodes, Random random)
    {
        var window = Math.Max(2000, Window(nodes).TotalMilliseconds);
        return TimeSpan.FromMilliseconds(window * (0.5 + (random.NextDouble() / 2)));
    }

    /// <summary>Trailers carrying <paramref name="after"/> as the retry hint.</summary>
    public static Metadata Hint(TimeSpan after) =>
        new() { { PushbackTrailer, ((long)Math.Ceiling(after.TotalMilliseconds)).ToString(System.Globalization.CultureInfo.InvariantCulture) } };

    private static partial class Log
    {
        [LoggerMessage(2040, LogLevel.Warning, "{Limit} reports are waiting for the database (Coordinator:ReportsInFlight): refused {Shed} more with RESOURCE_EXHAUSTED and a retry hint since this was last said; their agents send again")]
        public static partial void Shedding(ILogger logger, int limit, long shed);
    }
}
