using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

/// <summary>Temporary problems on this node, written as Kubernetes Events where admins look (kubectl describe node).</summary>
public interface INodeEvents
{
    void Record(string reason, string message, bool warning = true);
}

/// <summary>When Events are off: nothing is written.</summary>
public sealed class NoNodeEvents : INodeEvents
{
    public void Record(string reason, string message, bool warning = true)
    {
    }
}

/// <summary>
/// core/v1 Events about the Node (involvedObject the Node, source.component toolforge-node-agent). Events of one
/// reason within EventAggregateWindow are one Event: the first is created at once, later ones raise its count and
/// lastTimestamp (message: "(combined from similar events): " + the latest), written at most every
/// EventFlushInterval, so 50 OOM kills in a minute are one Event with count 50, not 50 Events. A failed write is
/// kept and retried with backoff (shown as the check kubernetes.events); only more than 64 reasons at once would
/// drop the oldest series, counted in toolforge_node_events_dropped_total and logged.
/// </summary>
public sealed partial class NodeEventRecorder : BackgroundService, INodeEvents
{
    public const string Check = "kubernetes.events";
    public const string Component = "toolforge-node-agent";
    private const int MaxSeries = 64;

    private static readonly Counter Dropped = Metrics.CreateCounter("toolforge_node_events_dropped_total", "Kubernetes Events given up before they were written.");
    private static readonly Counter WriteFailures = Metrics.CreateCounter("toolforge_node_event_write_failures_total", "Event creates and patches that failed.");

    private sealed class Series(string reason, bool warning, DateTimeOffset first)
    {
        public string Reason { get; } = reason;

        public bool Warning { get; } = warning;

        public DateTimeOffset First { get; } = first;

        public DateTimeOffset Last { get; set; } = first;

        public string Message { get; set; } = string.Empty;

        public int Count { get; set; }

        public int Written { get; set; }

        public string? Name { get; set; }

        /// <summary>
        /// The Event's name, chosen once: a create whose answer was lost (cut at stop, a timeout) and is sent again meets
        /// 409 AlreadyExists and becomes a patch of the same Event, never a second one.
        /// </summary>
        public string? PlannedName { get; set; }

        public DateTimeOffset WrittenAt { get; set; }
    }

    // One write of the pending Events at a time: the final flush at stop does not race the loop's last one.
    private readonly SemaphoreSlim _flushing = new(1, 1);

    private readonly NodeConditionsOptions _o;
    private readonly KubeClient _client;
    private readonly AgentState _state;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeEventRecorder> _logger;
    private readonly object _lock = new();
    private readonly List<Series> _series = [];
    private readonly SemaphoreSlim _wake = new(0);
    /// <summary>Between attempts to write events after a failure: 2 s doubling, at most 2 min.</summary>
    private static readonly RetryBounds Rewrite = new(Initial: TimeSpan.FromSeconds(2), Max: TimeSpan.FromMinutes(2));

    private readonly RetryStreak _streak;
    private string _failingReason = string.Empty; // the event whose write failed, for the streak's first line
    private DateTimeOffset _retryAt;
    private long _seq;

    public NodeEventRecorder(IOptions<NodeConditionsOptions> options, KubeClient client, ClusterView cluster, AgentState state, TimeProvider time, ILogger<NodeEventRecorder> logger)
    {
        _o = options.Value;
        _client = client;
        NodeName = cluster.NodeName;
        _state = state;
        _time = time;
        _logger = logger;
        // One WRN when writes start failing (the check says every retry), one line when an event is written again.
        _streak = new RetryStreak(Rewrite, time,
            (ex, wait) => Log.WriteFailed(_logger, _failingReason, _client.Why(ex), wait.TotalSeconds),
            (failures, length) => Log.Written(_logger, failures, length.TotalSeconds));
        state.EventAdded += OnAgentEvent;
    }

    public string NodeName { get; }

    public void Record(string reason, string message, bool warning = true)
    {
        var now = _time.GetUtcNow();
        var first = false;
        lock (_lock)
        {
            var s = _series.FirstOrDefault(x => x.Reason == reason && x.Warning == warning && now - x.First < _o.EventAggregateWindow);
            if (s is null)
            {
                _series.RemoveAll(x => now - x.First >= _o.EventAggregateWindow && x.Written == x.Count);
                if (_series.Count >= MaxSeries)
                {
                    var oldest = _series.OrderBy(x => x.Last).First();
                    _series.Remove(oldest);
                    Dropped.Inc(oldest.Count - oldest.Written);
                    Log.SeriesDropped(_logger, oldest.Reason, oldest.Count - oldest.Written, MaxSeries);
                }

                s = new Series(reason, warning, now);
                _series.Add(s);
                first = true;
            }

            s.Count++;
            s.Last = now;
            s.Message = ConditionFamilies.Bound(message);
        }

        if (first)
        {
            _wake.Release();
        }
    }

    /// <summary>An agent event's detail that makes its Event type Normal rather than Warning (a step that went well).</summary>
    public const string NormalDetail = "event-type";

    // The agent's own events (a remediation restart, a deleted conntrack entry, ...) as Events too.
    private void OnAgentEvent(AgentEvent e) =>
        Record(ConditionFamilies.Pascal(e.Kind), e.Message, warning: !e.Kind.EndsWith("-deleted", StringComparison.Ordinal)
            && !(e.Details.TryGetValue(NormalDetail, out var type) && type == "Normal"));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await FlushAsync(stoppingToken).ConfigureAwait(false);
            try
            {
                await _wake.WaitAsync(_o.EventFlushInterval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>At stop (a reboot the ladder asked for, an upgrade): how long the last write of what is pending may take.</summary>
    public static readonly TimeSpan FinalFlush = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Stopping: what is not written yet (the Event of the reboot that stops this agent, a series grown since its last
    /// write) is written once more, bounded by <see cref="FinalFlush"/>, so it is not lost with the process.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(FinalFlush);
        try
        {
            await FlushAsync(bound.Token, everything: true).ConfigureAwait(false);
        }
        catch (Exception) when (bound.IsCancellationRequested)
        {
            Log.FinalFlushCut(_logger, FinalFlush.TotalSeconds); // the API server did not answer in time: what was pending is lost
        }
    }

    /// <summary>Writes what is due: new series at once, grown ones once their last write is EventFlushInterval old (<paramref name="everything"/>: all pending, now).</summary>
    public async Task FlushAsync(CancellationToken ct, bool everything = false)
    {
        await _flushing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await FlushOnceAsync(ct, everything).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                _flushing.Release();
            }
            catch (ObjectDisposedException)
            {
                // The host disposed the recorder while a flush it had given up on was ending (at stop): nothing to release.
            }
        }
    }

    private async Task FlushOnceAsync(CancellationToken ct, bool everything)
    {
        var now = _time.GetUtcNow();
        if (now < _retryAt && !everything)
        {
            return;
        }

        List<(Series S, int Count, string Message, DateTimeOffset Last, string? Name)> due;
        lock (_lock)
        {
            due = _series.Where(s => s.Count > s.Written && (everything || s.Name is null || now - s.WrittenAt >= _o.EventFlushInterval))
                .Select(s => (s, s.Count, s.Message, s.Last, s.Name)).ToList();
        }

        foreach (var (s, count, message, last, name) in due)
        {
            try
            {
                var written = name is null ? await CreateAsync(s, count, message, last, ct).ConfigureAwait(false) : await PatchAsync(name, count, message, last, ct).ConfigureAwait(false);
                lock (_lock)
                {
                    (s.Name, s.Written, s.WrittenAt) = (written, count, now);
                }

                _streak.Succeeded();
                _state.SetCheck(Check, CheckState.Ok, $"events written to {_o.EventNamespace} (last: {s.Reason} ×{count})");
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
            {
                WriteFailures.Inc();
                _failingReason = s.Reason;
                var wait = _streak.Failed(ex);
                _retryAt = now + wait;
                var why = _client.Why(ex);
                _state.SetCheck(Check, CheckState.Warning, $"cannot write the {s.Reason} event: {why}; kept, retrying in {wait.TotalSeconds:0}s");
                return;
            }
        }
    }

    private async Task<string> CreateAsync(Series s, int count, string message, DateTimeOffset last, CancellationToken ct)
    {
        var e = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Event",
            ["metadata"] = new JsonObject
            {
                ["name"] = PlannedName(s),
                ["namespace"] = _o.EventNamespace,
            },
            ["involvedObject"] = new JsonObject { ["kind"] = "Node", ["name"] = NodeName, ["uid"] = NodeName, ["apiVersion"] = "v1" },
            ["reason"] = s.Reason,
            ["message"] = count > 1 ? "(combined from similar events): " + message : message,
            ["type"] = s.Warning ? "Warning" : "Normal",
            ["source"] = new JsonObject { ["component"] = Component, ["host"] = NodeName },
            ["reportingComponent"] = Component,
            ["reportingInstance"] = NodeName,
            ["firstTimestamp"] = KubeTime.Format(s.First),
            ["lastTimestamp"] = KubeTime.Format(last),
            ["count"] = count,
        };
        KubeCreated created;
        try
        {
            using var cts = _client.Deadline(ct);
            created = await _client.Api.PostAsync($"/api/v1/namespaces/{Uri.EscapeDataString(_o.EventNamespace)}/events", e.ToJsonString(), KubeJson.Default.KubeCreated, cts.Token).ConfigureAwait(false);
        }
        catch (KubeApiException ex) when (ex.StatusCode == 409 && ex.Reason == "AlreadyExists")
        {
            // Our own create landed before (its answer was lost): the same Event, brought up to date.
            return await PatchAsync(PlannedName(s), count, message, last, ct).ConfigureAwait(false);
        }

        return created.Metadata?.Name ?? throw new System.Text.Json.JsonException("the created Event has no metadata.name");
    }

    private string PlannedName(Series s)
    {
        lock (_lock)
        {
            return s.PlannedName ??= $"{NodeName}.{s.First.UtcTicks.ToString("x", CultureInfo.InvariantCulture)}.{Interlocked.Increment(ref _seq).ToString(CultureInfo.InvariantCulture)}";
        }
    }

    private async Task<string> PatchAsync(string name, int count, string message, DateTimeOffset last, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["count"] = count,
            ["lastTimestamp"] = KubeTime.Format(last),
            ["message"] = count > 1 ? "(combined from similar events): " + message : message,
        }.ToJsonString();
        using var cts = _client.Deadline(ct);
        await _client.Api.PatchAsync($"/api/v1/namespaces/{Uri.EscapeDataString(_o.EventNamespace)}/events/{Uri.EscapeDataString(name)}", "application/merge-patch+json", body, KubeJson.Default.KubeCreated, cts.Token).ConfigureAwait(false);
        return name;
    }

    public override void Dispose()
    {
        _state.EventAdded -= OnAgentEvent;
        _wake.Dispose();
        _flushing.Dispose();
        base.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.EventsWriteFailed, LogLevel.Warning, "cannot write the {Reason} event: {Why}; kept, retrying in {Seconds:0}s")]
        public static partial void WriteFailed(ILogger logger, string reason, string why, double seconds);

        [LoggerMessage(EventIds.EventsWrittenAgain, LogLevel.Information, "events written again after {Failures} failed attempts ({Seconds:0}s)")]
        public static partial void Written(ILogger logger, int failures, double seconds);

        [LoggerMessage(EventIds.EventsSeriesDropped, LogLevel.Warning, "more than {Max} event reasons at once: the oldest, {Reason}, dropped with {Count} unwritten occurrence(s)")]
        public static partial void SeriesDropped(ILogger logger, string reason, int count, int max);

        [LoggerMessage(3093, LogLevel.Warning, "stopping: the API server did not take the pending Node Events within {Seconds}s; they are lost")]
        public static partial void FinalFlushCut(ILogger logger, double seconds);
    }
}
