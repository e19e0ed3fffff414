using System.Collections.Concurrent;
using Prometheus;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Counts every refused call in a metric and logs it once per (identity, method) per minute, so a hostile or
/// misconfigured client cannot fill the journal.
/// </summary>
public sealed partial class RefusalLog(TimeProvider time, ILogger<RefusalLog> logger)
{
    private const int MaxRemembered = 10_000;
    private static readonly TimeSpan Quiet = TimeSpan.FromMinutes(1);

    private static readonly Counter Refused = Metrics.CreateCounter(
        "toolforge_coordinator_refused_calls_total", "Calls refused by the coordinator, by method and status.", "method", "status");

    private readonly ConcurrentDictionary<(string Identity, string Method), DateTimeOffset> _last = new();

    public void Note(string identity, string method, Grpc.Core.StatusCode status, string reason)
    {
        Refused.WithLabels(method, status.ToString()).Inc();
        var now = time.GetUtcNow();
        var key = (identity, method);
        if (_last.TryGetValue(key, out var at) && now - at < Quiet)
        {
            return;
        }

        if (_last.Count >= MaxRemembered)
        {
            _last.Clear();
        }

        _last[key] = now;
        Log.Refused(logger, identity, method, status.ToString(), reason);
    }

    private static partial class Log
    {
        [LoggerMessage(2003, LogLevel.Warning, "refused {Method} from {Identity}: {Status}: {Reason} (said once a minute per caller and method)")]
        public static partial void Refused(ILogger logger, string identity, string method, string status, string reason);
    }
}
