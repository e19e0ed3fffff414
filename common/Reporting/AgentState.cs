using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Prometheus;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Reporting;

/// <summary>
/// What an agent currently knows: the latest result of each check, the findings each check produced and the events
/// not yet delivered. Checks write here; the reporting service sends it. A state change logs one line, updates the
/// metrics and wakes the reporter at once; a repeated identical result only refreshes the timestamp.
/// </summary>
public sealed partial class AgentState
{
    private static readonly Gauge CheckStateGauge = Metrics.CreateGauge(
        "toolforge_check_state", "Latest state of each check: 0 ok, 1 warning, 2 failing, 3 unknown.", "check");
    private static readonly Gauge CheckLatency = Metrics.CreateGauge(
        "toolforge_check_latency_seconds", "How long the latest run of each check took.", "check");
    private static readonly Gauge FindingsGauge = Metrics.CreateGauge(
        "toolforge_findings", "Current findings by kind, not counting those an admin acknowledged (what alerts use).", "kind");
    private static readonly Gauge AcknowledgedGauge = Metrics.CreateGauge(
        "toolforge_findings_acknowledged", "Current findings by kind that an admin acknowledged (agentctl ack): left out of toolforge_findings.", "kind");

    private readonly object _lock = new();
    private readonly Dictionary<string, CheckResult> _checks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Finding>> _findings = new(StringComparer.Ordinal);
    private readonly List<(long Seq, AgentEvent Event)> _events = [];
    private List<NodeImage> _images = [];
    private List<string> _podDigests = [];
    private Timestamp? _podsAt;
    private bool _runsPods;
    private Timestamp? _imagesAt;
    private long _nextEventSeq = 1;
    private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TimeProvider _time;
    private readonly ILogger<AgentState> _logger;
    private const int MaxPendingEvents = 1000;

    public AgentState(TimeProvider time, ILogger<AgentState> logger)
    {
        _time = time;
        _logger = logger;
    }

    /// <summary>Peers known to be down, shared by every check of this agent.</summary>
    public Checks.PeerAlerts Peers { get; } = new();

    /// <summary>
    /// Records a check's result; returns true when its state changed. A change is one log line (WRN when not ok);
    /// <paramref name="quiet"/> makes it INF, for a check that only repeats what another already said.
    /// </summary>
    public bool SetCheck(string name, CheckState state, string message, TimeSpan? latency = null,
        IReadOnlyDictionary<string, string>? details = null, IReadOnlyDictionary<string, double>? values = null, bool quiet = false)
    {
        var now = Timestamp.FromDateTimeOffset(_time.GetUtcNow());
        var result = new CheckResult
        {
            Name = name,
            State = state,
            Message = message,
            ObservedAt = now,
            Since = now,
        };
        if (latency is { } l)
        {
            result.Latency = Duration.FromTimeSpan(l);
            CheckLatency.WithLabels(name).Set(l.TotalSeconds);
        }

        if (details is not null)
        {
            foreach (var (k, v) in details)
            {
                result.Details[k] = v;
            }
        }

        if (values is not null)
        {
            foreach (var (k, v) in values)
            {
                result.Values[k] = v;
            }
        }

        bool changed;
        lock (_lock)
        {
            changed = !_checks.TryGetValue(name, out var previous) || previous.State != state;
            if (!changed)
            {
                result.Since = previous!.Since;
            }

            _checks[name] = result;
        }

        CheckStateGauge.WithLabels(name).Set(state switch
        {
            CheckState.Ok => 0,
            CheckState.Warning => 1,
            CheckState.Failing => 2,
            _ => 3,
        });
        if (changed)
        {
            if (state == CheckState.Ok)
            {
                Log.CheckOk(_logger, name, message);
            }
            else if (quiet)
            {
                Log.CheckNotOkQuiet(_logger, name, state.Name(), message);
            }
            else
            {
                Log.CheckNotOk(_logger, name, state.Name(), message);
            }

            Signal();
        }

        return changed;
    }

    /// <summary>Replaces the findings of one check; returns true when the set (by kind and subject) changed.</summary>
    public bool SetFindings(string check, IEnumerable<Finding> findings)
    {
        var list = findings.Select(f =>
        {
            var copy = f.Clone();
            copy.Check = check;
            return copy;
        }).ToList();
        bool changed;
        lock (_lock)
        {
            _findings.TryGetValue(check, out var previous);
            var before = (previous ?? []).Select(Key).ToHashSet(StringComparer.Ordinal);
            var after = list.Select(Key).ToHashSet(StringComparer.Ordinal);
            changed = !before.SetEquals(after);
            _findings[check] = list;
            if (changed || _acks.Count > 0)
            {
                SetFindingMetrics(previous ?? []); // with acknowledgements, also when only a severity changed
            }
        }

        if (changed)
        {
            Log.FindingsChanged(_logger, check, list.Count);
            Signal();
        }

        return changed;
    }

    private Dictionary<(string Kind, string Subject), Acknowledgement> _acks = [];

    /// <summary>
    /// The coordinator's answer: which of our findings an admin acknowledged, until when and at which severity. They
    /// leave toolforge_findings (so their alert stops) for toolforge_findings_acknowledged. Kept until the next
    /// answer, and only while the finding is still here at no higher severity and the acknowledgement has not ended:
    /// with the coordinator unreachable, a finding that resolves and comes back, or gets worse, alerts again.
    /// </summary>
    public void SetAcknowledged(IEnumerable<Acknowledgement> acks)
    {
        lock (_lock)
        {
            var next = acks.Where(a => a.Until is not null).ToDictionary(a => (a.Kind, a.Subject));
            if (next.Count == 0 && _acks.Count == 0)
            {
                return;
            }

            _acks = next;
            SetFindingMetrics([]);
        }
    }

    // Under _lock: the gauges of every kind held now or in <paramref name="previous"/>; acknowledgements that no longer
    // match a finding are dropped (a finding that comes back is a new one).
    private void SetFindingMetrics(IEnumerable<Finding> previous)
    {
        var now = _time.GetUtcNow();
        var all = _findings.Values.SelectMany(v => v).ToList();
        if (_acks.Count > 0)
        {
            // Gone (a finding that comes back is a new one) or worse than acknowledged (it changed): the end of it.
            var present = all.GroupBy(f => (f.Kind, f.Subject)).ToDictionary(g => g.Key, g => g.Max(f => f.Severity));
            foreach (var ended in _acks.Where(a => !present.TryGetValue(a.Key, out var severity) || severity > a.Value.Severity).Select(a => a.Key).ToList())
            {
                _acks.Remove(ended);
            }
        }

        foreach (var kind in all.Concat(previous).Select(f => f.Kind).Concat(_acks.Keys.Select(k => k.Kind)).Distinct())
        {
            var ofKind = all.Where(f => f.Kind == kind).ToList();
            var acked = ofKind.Count(f => IsAcknowledged(f, now));
            FindingsGauge.WithLabels(kind).Set(ofKind.Count - acked);
            AcknowledgedGauge.WithLabels(kind).Set(acked);
        }

        // The moment an acknowledgement ends, its finding counts again: one timer for the earliest end.
        var next = _acks.Values.Select(a => a.Until.ToDateTimeOffset()).Where(t => t > now).DefaultIfEmpty(DateTimeOffset.MaxValue).Min();
        _ackTimer?.Dispose();
        _ackTimer = next == DateTimeOffset.MaxValue ? null : _time.CreateTimer(_ => { lock (_lock) { SetFindingMetrics([]); } }, null, next - now + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
    }

    private System.Threading.ITimer? _ackTimer;

    private bool IsAcknowledged(Finding f, DateTimeOffset now) =>
        _acks.TryGetValue((f.Kind, f.Subject), out var a) && now < a.Until.ToDateTimeOffset() && f.Severity <= a.Severity;

    /// <summary>Whether an admin's acknowledgement (as the coordinator last said) holds for this finding now.</summary>
    public bool IsAcknowledged(Finding f)
    {
        lock (_lock)
        {
            return IsAcknowledged(f, _time.GetUtcNow());
        }
    }

    public void AddEvent(string kind, string message, IReadOnlyDictionary<string, string>? details = null)
    {
        var e = new AgentEvent { Kind = kind, Message = message, At = Timestamp.FromDateTimeOffset(_time.GetUtcNow()) };
        if (details is not null)
        {
            foreach (var (k, v) in details)
            {
                e.Details[k] = v;
            }
        }

        lock (_lock)
        {
            if (_events.Count >= MaxPendingEvents)
            {
                _events.RemoveAt(0);
                Log.EventDropped(_logger, MaxPendingEvents);
            }

            _events.Add((_nextEventSeq++, e));
        }

        Log.Event(_logger, kind, message);
        Signal();
        EventAdded?.Invoke(e);
    }

    /// <summary>Raised after each <see cref="AddEvent"/> (the node-agent also writes them as Kubernetes Events). Handlers must not throw or block.</summary>
    public event Action<AgentEvent>? EventAdded;

    private readonly HashSet<string> _expected = new(StringComparer.Ordinal);

    /// <summary>
    /// Says that checks of these names run in this agent and will answer: a verdict that combines several checks
    /// (a Node condition) waits for every expected one to answer once, instead of judging from the first to answer.
    /// </summary>
    public void Expect(IEnumerable<string> names)
    {
        lock (_lock)
        {
            _expected.UnionWith(names);
        }
    }

    /// <summary>The checks that are expected to answer and have not yet.</summary>
    public IReadOnlySet<string> NotYetAnswered()
    {
        lock (_lock)
        {
            return _expected.Where(n => !_checks.ContainsKey(n)).ToHashSet(StringComparer.Ordinal);
        }
    }

    /// <summary>Every check's latest result, by name.</summary>
    public IReadOnlyList<CheckResult> GetChecks()
    {
        lock (_lock)
        {
            return _checks.Values.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => c.Clone()).ToList();
        }
    }

    public CheckResult? GetCheck(string name)
    {
        lock (_lock)
        {
            return _checks.TryGetValue(name, out var r) ? r.Clone() : null;
        }
    }

    public IReadOnlyList<Finding> GetFindings(string? check = null)
    {
        lock (_lock)
        {
            return (check is null ? _findings.Values.SelectMany(v => v) : _findings.GetValueOrDefault(check) ?? [])
                .Select(f => f.Clone()).ToList();
        }
    }

    /// <summary>
    /// The full state as a report body; <paramref name="lastEvent"/> names the newest event it carries, for
    /// <see cref="AcknowledgeEvents"/> (events dropped or added meanwhile do not shift what is acknowledged).
    /// </summary>
    /// <summary>The message of a check expected to answer that has not yet (in a report's snapshot).</summary>
    public const string NotRunYet = "not run yet since the agent started";

    public ReportRequest Snapshot(out long lastEvent)
    {
        var report = new ReportRequest { SentAt = Timestamp.FromDateTimeOffset(_time.GetUtcNow()) };
        lock (_lock)
        {
            // A check expected to answer that has not yet (the agent just started) is in the report without a verdict,
            // so the coordinator keeps what it stored for it instead of taking its absence for "turned off".
            report.Checks.AddRange(_checks.Values.Select(c => c.Clone())
                .Concat(_expected.Where(n => !_checks.ContainsKey(n)).Select(n => new CheckResult { Name = n, State = CheckState.Unknown, Message = NotRunYet }))
                .OrderBy(c => c.Name, StringComparer.Ordinal));
            report.Findings.AddRange(_findings.Values.SelectMany(v => v).Select(f => f.Clone()));
            // The oldest first, at most what one report carries; the rest go with the next report.
            var carried = _events.Take(Contracts.ReportLimits.MaxEvents).ToList();
            report.Events.AddRange(carried.Select(e => e.Event.Clone()));
            lastEvent = carried.Count > 0 ? carried[^1].Seq : 0;
            if (_imagesAt is not null)
            {
                report.Images.AddRange(_images.Select(i => i.Clone()));
                report.PodDigests.AddRange(_podDigests);
                report.PodsAt = _podsAt?.Clone();
                report.RunsPods = _runsPods;
                report.ImagesAt = _imagesAt.Clone();
            }
        }

        return report;
    }

    /// <summary>
    /// The images this node's runtime holds, as last listed at <paramref name="at"/> (issue 27); the digests the pods
    /// bound to it name that none of them was pulled by (<paramref name="podDigests"/>), as listed at
    /// <paramref name="podsAt"/> (null: never); whether the runtime runs containers of Kubernetes pods. They go with every
    /// report from now on; a report sent before the first listing carries none (and no images_at: the coordinator keeps
    /// its own). A change of any of them (not of the times alone) asks for a report at once.
    /// </summary>
    public void SetImages(IReadOnlyList<NodeImage> images, DateTimeOffset at, IReadOnlyList<string>? podDigests = null, DateTimeOffset? podsAt = null, bool runsPods = false)
    {
        podDigests ??= [];
        bool changed;
        lock (_lock)
        {
            changed = _imagesAt is null || !_images.SequenceEqual(images) || !_podDigests.SequenceEqual(podDigests, StringComparer.Ordinal)
                || (_podsAt is null) != (podsAt is null) || _runsPods != runsPods;
            _images = [.. images];
            _podDigests = [.. podDigests];
            _podsAt = podsAt is { } p ? Timestamp.FromDateTimeOffset(p) : null;
            _runsPods = runsPods;
            _imagesAt = Timestamp.FromDateTimeOffset(at);
        }

        if (changed)
        {
            Signal();
        }
    }

    /// <summary>The digests pods named and when they were listed, as last set (<see cref="SetImages"/>); none and null before.</summary>
    public (IReadOnlyList<string> Digests, DateTimeOffset? At) PodListing()
    {
        lock (_lock)
        {
            return (_podDigests, _podsAt?.ToDateTimeOffset());
        }
    }

    /// <summary>Drops the events up to <paramref name="lastEvent"/> (from <see cref="Snapshot"/>): the coordinator has them.</summary>
    public void AcknowledgeEvents(long lastEvent)
    {
        lock (_lock)
        {
            _events.RemoveAll(e => e.Seq <= lastEvent);
        }
    }

    /// <summary>Completes when something changed since the last call (or at once if it already had).</summary>
    public ValueTask<bool> WaitForChangeAsync(CancellationToken ct) => _changed.Reader.ReadAsync(ct);

    private void Signal() => _changed.Writer.TryWrite(true);

    private static string Key(Finding f) => f.Kind + "\u0000" + f.Subject;

    private static partial class Log
    {
        [LoggerMessage(1101, LogLevel.Information, "check {Check} is ok: {Message}")]
        public static partial void CheckOk(ILogger logger, string check, string message);

        [LoggerMessage(1102, LogLevel.Warning, "check {Check} is {State}: {Message}")]
        public static partial void CheckNotOk(ILogger logger, string check, string state, string message);

        [LoggerMessage(1106, LogLevel.Information, "check {Check} is {State}: {Message}")]
        public static partial void CheckNotOkQuiet(ILogger logger, string check, string state, string message);

        [LoggerMessage(1103, LogLevel.Information, "check {Check} now has {Count} finding(s)")]
        public static partial void FindingsChanged(ILogger logger, string check, int count);

        [LoggerMessage(1104, LogLevel.Warning, "event {Kind}: {Message}")]
        public static partial void Event(ILogger logger, string kind, string message);

        [LoggerMessage(1105, LogLevel.Warning, "more than {Max} events waiting for the coordinator: dropped the oldest")]
        public static partial void EventDropped(ILogger logger, int max);
    }
}
