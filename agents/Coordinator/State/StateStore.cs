using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// The coordinator's view of every node, held in memory for fast reads; it holds only what the store committed.
/// A report replaces what was held for (node, agent); state changes of checks, resolved findings and events go to
/// the history tables. Reads (ListNodes, GetNode, ListFindings) never touch the database.
/// </summary>
public sealed partial class StateStore
{
    private const int RecentEventsPerNode = 20;

    /// <summary>Events kept in the database per node; older ones go when a node has twice this many.</summary>
    public const int StoredEventsPerNode = 1000;

    private static readonly Gauge NodesByState = Metrics.CreateGauge(
        "toolforge_coordinator_nodes", "Nodes by state.", "state");

    private readonly object _lock = new();
    private long _version; // any node added, changed or removed (under _lock)
    private (long Version, DateTimeOffset Until, ListNodesResponse Response)? _listCache;
    private readonly Dictionary<string, NodeRecord> _nodes = new(StringComparer.Ordinal);
    private string[]? _byName; // under _lock: every node's name in ordinal order; null once a node came or went
    private readonly Dictionary<string, HashSet<AgentKind>> _connected = new(StringComparer.Ordinal); // command streams, also of nodes not yet reported
    private readonly StripedAsyncLock _perNode = new(1024);
    private readonly StoreWriter _writer;
    private readonly IStoreEngine _engine;
    private readonly ChangeFeed _feed;
    private readonly TimeProvider _time;
    private readonly StateOptions _options;
    private readonly ILogger<StateStore> _logger;

    /// <summary>How many nodes this instance knows now.</summary>
    public int NodeCount
    {
        get
        {
            lock (_lock)
            {
                return _nodes.Count;
            }
        }
    }

    private sealed class NodeRecord(string name, DateTimeOffset firstSeen, HashSet<AgentKind> connected)
    {
        public string Name { get; } = name;
        public DateTimeOffset FirstSeen { get; } = firstSeen;
        public Dictionary<AgentKind, AgentRecord> Agents { get; } = [];

        /// <summary>The node's open command streams: the store's own set for this name, shared, not a copy.</summary>
        public HashSet<AgentKind> Connected { get; } = connected;
        public List<AgentEvent> RecentEvents { get; } = [];

        /// <summary>About how many events the database holds for this node (exact after a trim).</summary>
        public int StoredEvents { get; set; }

        public NodeSummary? Published { get; set; }

        /// <summary>The <see cref="WriteMark"/> of this instance's last committed write for this node (report, acknowledgement).</summary>
        public long LocalWriteAt { get; set; }

        /// <summary>The <see cref="WriteMark"/> of this instance's last committed acknowledgement write for this node.</summary>
        public long LocalAckWriteAt { get; set; }

        /// <summary>Admins' acknowledgements of this node's findings, as stored (some may no longer hold: <see cref="Acked"/>).</summary>
        public Dictionary<(AgentKind Agent, string Kind, string Subject), SaveAck> Acks { get; } = [];

        /// <summary>The acknowledgement that holds for <paramref name="f"/> of <paramref name="agent"/> now, if any.</summary>
        public SaveAck? Acked(AgentKind agent, Finding f, DateTimeOffset now) =>
            Acks.TryGetValue((agent, f.Kind, f.Subject), out var a) && Holds(a, f, now) ? a : null;

        /// <summary>
        /// An acknowledgement holds until its end, for the finding as it was: not once it resolved (a finding seen
        /// again is a new one, with another first_seen), nor once its severity rose above the acknowledged one.
        /// </summary>
        public static bool Holds(SaveAck a, Finding f, DateTimeOffset now) =>
            now.ToUnixTimeMilliseconds() < a.UntilMs
            && a.FirstSeenMs == (f.FirstSeen?.ToDateTimeOffset().ToUnixTimeMilliseconds() ?? 0)
            && (int)f.Severity <= a.Severity; // a worse one ends it (its report deletes it), also before that is taken in

        private NodeSummary? _summary;
        private DateTimeOffset _summaryUntil;

        /// <summary>Until when the last <see cref="Summary"/> holds without a report.</summary>
        public DateTimeOffset SummaryUntil => _summaryUntil;

        /// <summary>Call after anything the summary depends on changed (a report, a command stream coming or going).</summary>
        public void Changed() => _summary = null;

        /// <summary>
        /// The node's summary, judged again only when the node changed or time moved past its next stale/missing
        /// moment: ListNodes over 10,000 nodes then allocates nothing per node. Shared: callers must not modify it.
        /// </summary>
        public NodeSummary Summary(DateTimeOffset now, TimeSpan missingAfter)
        {
            if (_summary is null || now >= _summaryUntil)
            {
                _summary = NodeJudge.Summarize(Name, Agents.Values, Connected, now, missingAfter,
                    Acks.Count == 0 ? null : (agent, f) => Acked(agent, f, now) is not null);
                _summaryUntil = NodeJudge.SameUntil(Agents.Values, now, missingAfter);
                foreach (var a in Acks.Values)
                {
                    var end = FromMs(a.UntilMs);
                    if (end > now && end < _summaryUntil)
                    {
                        _summaryUntil = end; // the count of acknowledged findings changes then
                    }
                }
            }

            return _summary;
        }
    }

    public StateStore(StoreWriter writer, IStoreEngine engine, ChangeFeed feed, TimeProvider time, IOptions<StateOptions> options, ILogger<StateStore> logger)
    {
        _writer = writer;
        _engine = engine;
        _feed = feed;
        _time = time;
        _options = options.Value;
        _logger = logger;
    }

    private TimeSpan MissingAfter => TimeSpan.FromDays(_options.MissingAfterDays);

    /// <summary>Events per node the coordinator keeps in memory (and asks the store for at load).</summary>
    public const int RecentEvents = RecentEventsPerNode;

    /// <summary>
    /// Takes in everything the store holds: at start, before serving, and after this instance's notifications from
    /// the others were interrupted.
    /// </summary>
    public void Load(StoredState stored)
    {
        lock (_lock)
        {
            Merge(stored);
        }
    }

    /// <summary>
    /// Takes in what other instances stored for <paramref name="nodes"/> (after its notification, or a resync): each
    /// agent's state replaces the one held when it is at least as new, so a report of this instance still being
    /// committed is not undone. Watchers of this instance see the change as if the report had come here.
    /// </summary>
    /// <param name="readAfter">The <see cref="WriteMark"/> taken before <paramref name="stored"/> was read: what this
    /// instance committed for a node after it (an acknowledgement, a forget, a node's first report) is newer than the
    /// read and is not undone by it.</param>
    /// <returns>The nodes whose acknowledgements were written here after the read: read them again (after this
    /// instance's write committed, so the read has it, and has what another instance wrote too).</returns>
    public IReadOnlyCollection<string> Refresh(IReadOnlyCollection<string> nodes, StoredState stored, long readAfter = long.MaxValue)
    {
        lock (_lock)
        {
            foreach (var gone in nodes.Except(stored.Nodes.Select(n => n.Name), StringComparer.Ordinal))
            {
                if (_nodes.TryGetValue(gone, out var held) && held.LocalWriteAt <= readAfter && RemoveNode(gone)) // forgotten through another instance
                {
                    _version++;
                    _feed.Publish(new WatchEvent { At = Timestamp.FromDateTimeOffset(_time.GetUtcNow()), NodeRemoved = gone });
                }
            }

            return Merge(stored, readAfter);
        }
    }

    /// <summary>
    /// A mark of this instance's committed writes: take it before reading the store for <see cref="Refresh"/>. (Each
    /// local write of a node's state moves it on, under the lock, once committed.)
    /// </summary>
    public long WriteMark()
    {
        lock (_lock)
        {
            return _localWrites;
        }
    }

    private long _localWrites; // under _lock
    private readonly Dictionary<string, long> _forgotten = new(StringComparer.Ordinal); // forgotten here: name -> its mark (under _lock)

    /// <summary>What the node-agents said their runtimes hold of <paramref name="digests"/> (issue 27).</summary>
    /// <param name="Holding">Per digest, the nodes whose runtime holds an image pulled by it, name order.</param>
    /// <param name="InUse">Per digest, those of them with a container made from it.</param>
    /// <param name="Unreported">Nodes with a node-agent whose images are not known (never listed), name order.</param>
    /// <param name="AnyReported">Whether any node-agent ever listed its images.</param>
    public sealed record NodeImageView(
        IReadOnlyDictionary<string, List<string>> Holding, IReadOnlyDictionary<string, List<string>> InUse, IReadOnlyList<string> Unreported, bool AnyReported);

    public NodeImageView NodeImages(IReadOnlySet<string> digests)
    {
        var holding = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var inUse = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var unreported = new List<string>();
        var any = false;
        lock (_lock)
        {
            foreach (var (name, node) in _nodes.OrderBy(n => n.Key, StringComparer.Ordinal))
            {
                if (!node.Agents.TryGetValue(AgentKind.Node, out var agent))
                {
                    continue;
                }

                if (agent.State.ImagesAt is null)
                {
                    unreported.Add(name);
                    continue;
                }

                any = true;
                foreach (var image in agent.State.Images)
                {
                    foreach (var digest in image.RepoDigests.Select(r => NodeImageNames.Split(r).Digest).Where(digests.Contains).Distinct(StringComparer.Ordinal))
                    {
                        Add(holding, digest, name);
                        if (image.InUse)
                        {
                            Add(inUse, digest, name);
                        }
                    }
                }
            }
        }

        static void Add(Dictionary<string, List<string>> to, string digest, string node)
        {
            if (!to.TryGetValue(digest, out var list))
            {
                to[digest] = list = [];
            }

            if (list.Count == 0 || list[^1] != node)
            {
                list.Add(node);
            }
        }

        return new NodeImageView(holding, inUse, unreported, any);
    }

    /// <summary>At most this many distinct digests go into one prune's protection (a bigger set refuses the prune).</summary>
    public const int MaxProtectedDigests = 50_000;

    /// <summary>
    /// What a prune must never delete (issue 27): every digest any node-agent's runtime holds or uses (the digest of each
    /// repo digest it listed) and every digest the pods bound to its node name (pod_digests), taken now. Also refused while
    /// a node-agent whose runtime runs pods has not listed its pods within that age. Refused (Refusal set, nothing else to rely on) when a node-agent's list is
    /// unknown or older than Coordinator:ImageListMaxAge: a node that cannot say what it holds could hold anything.
    /// </summary>
    public ImageProtection ImageProtection()
    {
        var maxAge = _options.ImageListMaxAge;
        var now = _time.GetUtcNow();
        var digests = new HashSet<string>(StringComparer.Ordinal);
        var unknown = new List<string>();
        var stale = new List<string>();
        var podsUnknown = new List<string>();
        var nodes = 0;
        DateTimeOffset? oldest = null;
        lock (_lock)
        {
            foreach (var (name, node) in _nodes.OrderBy(n => n.Key, StringComparer.Ordinal))
            {
                if (!node.Agents.TryGetValue(AgentKind.Node, out var agent))
                {
                    continue;
                }

                nodes++;
                if (agent.State.ImagesAt is null)
                {
                    unknown.Add(name);
                    continue;
                }

                var at = agent.State.ImagesAt.ToDateTimeOffset();
                oldest = oldest is { } o && o <= at ? o : at;
                if (now - at > maxAge)
                {
                    stale.Add($"{name} ({(now - at).TotalMinutes:0} min)");
                }

                foreach (var image in agent.State.Images)
                {
                    foreach (var entry in image.RepoDigests)
                    {
                        digests.Add(NodeImageNames.Split(entry).Digest);
                    }
                }

                foreach (var entry in agent.State.PodDigests) // named by a pod bound there, not pulled (yet, or any more)
                {
                    digests.Add(NodeImageNames.Split(entry).Digest);
                }

                // A node that runs pods is known only with its pods listed (a pod's pull to come names a digest no runtime holds).
                if (agent.State.RunsPods && (agent.State.PodsAt is null || now - agent.State.PodsAt.ToDateTimeOffset() > maxAge))
                {
                    podsUnknown.Add(agent.State.PodsAt is null ? $"{name} (never)" : $"{name} ({(now - agent.State.PodsAt.ToDateTimeOffset()).TotalMinutes:0} min)");
                }
            }
        }

        var result = new ImageProtection { Nodes = nodes, TakenAt = Timestamp.FromDateTimeOffset(now) };
        if (oldest is { } first)
        {
            result.OldestList = Timestamp.FromDateTimeOffset(first);
        }

        static string Some(List<string> names) => string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" and {names.Count - 10} more" : string.Empty);
        if (unknown.Count > 0)
        {
            result.Refusal = $"{unknown.Count} node-agent(s) never said which images their node holds: {Some(unknown)} (wait for their report; `agentctl forget` only a node gone for good: a forgotten node is not protected)";
        }
        else if (stale.Count > 0)
        {
            result.Refusal = $"{stale.Count} node-agent(s) listed their images longer ago than Coordinator:ImageListMaxAge ({maxAge.TotalMinutes:0} min): {Some(stale)} (their runtime or the agent is down: fix it; `agentctl forget` only a node gone for good: a forgotten node is not protected)";
        }
        else if (podsUnknown.Count > 0)
        {
            result.Refusal = $"{podsUnknown.Count} node-agent(s) run Kubernetes pods but listed them never or longer ago than Coordinator:ImageListMaxAge ({maxAge.TotalMinutes:0} min): {Some(podsUnknown)} (the node's check node.images says why: the API unreadable from the node, NodeAgent:Images:Pods off, or NodeAgent:Kubernetes not reading the API)";
        }
        else if (nodes == 0)
        {
            result.Refusal = "no node-agent has reported: the coordinator cannot say which images nodes hold";
        }
        else if (digests.Count > MaxProtectedDigests)
        {
            result.Refusal = $"the nodes hold {digests.Count} distinct digests, more than one prune carries ({MaxProtectedDigests})";
        }
        else
        {
            result.Digests.AddRange(digests.Order(StringComparer.Ordinal));
        }

        return result;
    }

    /// <summary>The names of the nodes held now.</summary>
    public IReadOnlyCollection<string> NodeNames()
    {
        lock (_lock)
        {
            return [.. _nodes.Keys];
        }
    }

    private List<string> Merge(StoredState stored, long readAfter = long.MaxValue)
    {
        var readAgain = new List<string>();
        var now = _time.GetUtcNow();
        var touched = new HashSet<string>(StringComparer.Ordinal);
        if (_forgotten.Count > 0 && readAfter != long.MaxValue)
        {
            // Nodes this instance forgot after the read began: the read still had them.
            var stale = stored.Nodes.Where(n => _forgotten.GetValueOrDefault(n.Name) > readAfter).Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
            if (stale.Count > 0)
            {
                stored = new StoredState(
                    [.. stored.Nodes.Where(n => !stale.Contains(n.Name))],
                    [.. stored.Agents.Where(a => !stale.Contains(a.Node))],
                    [.. stored.RecentEvents.Where(e => !stale.Contains(e.Node))],
                    stored.EventCounts.Where(c => !stale.Contains(c.Key)).ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal),
                    stored.Builds) { Acks = [.. stored.Acks.Where(a => !stale.Contains(a.Node))] };
            }
        }

        foreach (var (name, firstSeen) in stored.Nodes)
        {
            if (!_nodes.ContainsKey(name))
            {
                AddNode(new NodeRecord(name, FromMs(firstSeen), ConnectedOf(name)));
                _version++;
            }

            touched.Add(name);
        }

        foreach (var a in stored.Agents)
        {
            if (!_nodes.TryGetValue(a.Node, out var n))
            {
                continue;
            }

            var kind = (AgentKind)a.Kind;
            if (n.Agents.TryGetValue(kind, out var held) && SentAtMs(held.State) > a.SentAtMs)
            {
                continue; // what this instance holds was sent later by the agent (ordered by the agent, not by clocks)
            }

            n.Agents[kind] = FromStored(kind, a);
            n.Changed();
            _version++;
        }

        foreach (var group in stored.RecentEvents.GroupBy(e => e.Node, StringComparer.Ordinal))
        {
            if (_nodes.TryGetValue(group.Key, out var n))
            {
                n.RecentEvents.Clear();
                n.RecentEvents.AddRange(group.Select(e => AgentEvent.Parser.ParseFrom(e.Body)));
            }
        }

        foreach (var (name, count) in stored.EventCounts)
        {
            if (_nodes.TryGetValue(name, out var n))
            {
                n.StoredEvents = count;
            }
        }

        // The store holds every acknowledgement of the nodes read: they replace what was held.
        var acks = stored.Acks.ToLookup(a => a.Node, StringComparer.Ordinal); // once, not a scan of them all per node
        foreach (var name in touched)
        {
            var n = _nodes[name];
            if (n.LocalAckWriteAt > readAfter)
            {
                readAgain.Add(name); // acknowledged (or un-) here after the read began: this read is older than what is held
                continue;
            }

            if (n.Acks.Count > 0 || acks.Contains(name))
            {
                TakeAcks(n, acks[name]);
                _version++; // the cached node list counts acknowledged findings apart
            }
        }

        foreach (var name in touched)
        {
            PublishIfChanged(_nodes[name], now);
        }

        return readAgain;
    }

    /// <summary>
    /// Applies a validated report: durable first, then visible. What changed is decided against the agent's last
    /// stored state, written, and only once the write committed does the in-memory view take it in and the watchers
    /// hear of it. A write the store refuses (UNAVAILABLE) changes nothing, so the same report sent again is applied
    /// in full, its history rows included. Reports of one node are applied one at a time for that reason.
    /// </summary>
    /// <remarks>
    /// With several instances, this instance's view of the agent may be behind the store (another instance's commit
    /// whose notification has not been taken in yet): the write names the state it was decided against, the store
    /// refuses it when it holds another (<see cref="StoreConflictException"/>), and the report is decided again
    /// against the stored row, so no change is recorded twice or missed.
    /// </remarks>
    /// <param name="ct">The call's: a report whose caller gave up while it waited behind another of its node is not
    /// applied later on top of the caller's resend.</param>
    public async Task ApplyReportAsync(ReportRequest report, CancellationToken ct = default)
    {
        report.SentAt ??= Timestamp.FromDateTimeOffset(FromMs(_time.GetUtcNow().ToUnixTimeMilliseconds())); // unstamped: ordered as received
        using var serial = await _perNode.EnterAsync(report.Node, ct).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ApplyOnceAsync(report).ConfigureAwait(false);
                return;
            }
            catch (StoreConflictException ex) when (attempt < 3)
            {
                Log.DecidedAgain(_logger, report.Node, ex.Message);
                var stored = await Task.Run(() => _engine.LoadNode(report.Node, RecentEventsPerNode)).ConfigureAwait(false);
                TakeStored(report.Node, report.Agent, stored);
            }
        }
    }

    private async Task ApplyOnceAsync(ReportRequest report)
    {
        var now = FromMs(_time.GetUtcNow().ToUnixTimeMilliseconds()); // what the store keeps, so every instance (and a restart) shows the same
        var nowMs = now.ToUnixTimeMilliseconds();
        ReportDiff.Result diff;
        long firstSeenMs;
        int storedEvents;
        long? baseMs;
        List<DeleteAck> worse = [];
        lock (_lock)
        {
            var known = _nodes.TryGetValue(report.Node, out var node);
            AgentRecord? previous = null;
            if (known)
            {
                node!.Agents.TryGetValue(report.Agent, out previous);
            }

            if (previous is not null && SentAtMs(previous.State) > SentAtMs(report))
            {
                // The agent sent a later report, stored already (through another instance, or here while this one
                // waited): this one is superseded and would move the row back. Its events are in the later one too
                // (an agent sends them until a report is acknowledged).
                Log.Superseded(_logger, report.Node, report.Agent.ToString(), SentAtMs(report), SentAtMs(previous.State));
                return;
            }

            diff = ReportDiff.Compute(previous?.State, report, Timestamp.FromDateTimeOffset(now));
            baseMs = previous?.LastReport.ToUnixTimeMilliseconds();
            firstSeenMs = known ? node!.FirstSeen.ToUnixTimeMilliseconds() : nowMs;
            storedEvents = (known ? node!.StoredEvents : 0) + report.Events.Count;
            if (known && node!.Acks.Count > 0)
            {
                // A finding now worse than when it was acknowledged has changed: its acknowledgement ends, with this report.
                worse = [.. diff.Stored.Findings
                    .Where(f => node.Acks.TryGetValue((report.Agent, f.Kind, f.Subject), out var a) && (int)f.Severity > a.Severity)
                    .Select(f => new DeleteAck(report.Node, (int)report.Agent, f.Kind, f.Subject, BelowSeverity: (int)f.Severity))];
            }
        }

        var trimEvents = storedEvents > 2 * StoredEventsPerNode;
        StoreOp save = new SaveReport(
            report.Node,
            firstSeenMs,
            (int)report.Agent,
            report.AgentVersion,
            nowMs,
            (long)_options.HeartbeatInterval.TotalMilliseconds,
            diff.Stored.ToByteArray(),
            [.. diff.ChangedChecks.Select(ch => new CheckChange(ch.Name, (int)ch.State, ch.Message))],
            [.. diff.Resolved.Select(f => new ResolvedFinding(f.Kind, f.Subject, f.Message, f.FirstSeen?.ToDateTimeOffset().ToUnixTimeMilliseconds() ?? nowMs))],
            [.. report.Events.Select(e => new StoredEvent(e.At?.ToDateTimeOffset().ToUnixTimeMilliseconds() ?? nowMs, e.ToByteArray()))],
            trimEvents ? StoredEventsPerNode : null,
            new ReportBase(baseMs),
            SentAtMs(report));
        await _writer.WriteAsync(worse.Count == 0 ? save : new StoreBatch([save, .. worse])).ConfigureAwait(false);

        // Committed: now memory and the watchers.
        lock (_lock)
        {
            if (!_nodes.TryGetValue(report.Node, out var node))
            {
                node = new NodeRecord(report.Node, FromMs(firstSeenMs), ConnectedOf(report.Node));
                AddNode(node);
                _version++;
            }

            node.Agents[report.Agent] = new AgentRecord(report.Agent, report.AgentVersion, now, _options.HeartbeatInterval, diff.Stored);
            node.LocalWriteAt = ++_localWrites;
            _forgotten.Remove(report.Node);
            foreach (var ended in worse)
            {
                node.Acks.Remove(((AgentKind)ended.Kind, ended.Finding, ended.Subject));
                node.LocalAckWriteAt = node.LocalWriteAt;
            }

            node.Changed();
            _version++;
            node.RecentEvents.AddRange(report.Events);
            if (node.RecentEvents.Count > RecentEventsPerNode)
            {
                node.RecentEvents.RemoveRange(0, node.RecentEvents.Count - RecentEventsPerNode);
            }

            node.StoredEvents = trimEvents ? StoredEventsPerNode : node.StoredEvents + report.Events.Count;
            PublishIfChanged(node, now);
        }
    }

    /// <summary>
    /// The agent's record as a stored row holds it (what Merge and TakeStored both take in).
    /// </summary>
    private static AgentRecord FromStored(AgentKind kind, StoredAgent row) =>
        new(kind, row.Version, FromMs(row.LastReportMs), TimeSpan.FromMilliseconds(row.HeartbeatMs), ReportRequest.Parser.ParseFrom(row.State));

    /// <summary>
    /// Takes in the stored rows of one node after a conflict: the agent's state is the stored one whatever this
    /// instance held (its clock may differ from the instance that stored it), so the next decision starts from it.
    /// </summary>
    private void TakeStored(string name, AgentKind kind, StoredState stored)
    {
        lock (_lock)
        {
            var row = stored.Agents.FirstOrDefault(a => a.Kind == (int)kind);
            if (!_nodes.TryGetValue(name, out var n))
            {
                if (stored.Nodes.Count == 0)
                {
                    return;
                }

                n = new NodeRecord(name, FromMs(stored.Nodes[0].FirstSeenMs), ConnectedOf(name));
                AddNode(n);
            }

            if (row is null)
            {
                n.Agents.Remove(kind);
            }
            else
            {
                n.Agents[kind] = FromStored(kind, row);
            }

            n.RecentEvents.Clear();
            n.RecentEvents.AddRange(stored.RecentEvents.Select(e => AgentEvent.Parser.ParseFrom(e.Body)));
            n.StoredEvents = stored.EventCounts.GetValueOrDefault(name);
            TakeAcks(n, stored.Acks.Where(a => a.Node == name));
            n.Changed();
            _version++;
            PublishIfChanged(n, _time.GetUtcNow());
        }
    }

    /// <summary>The node's acknowledgements become <paramref name="mine"/> (the stored ones of this node).</summary>
    private static void TakeAcks(NodeRecord n, IEnumerable<SaveAck> mine)
    {
        n.Acks.Clear();
        foreach (var a in mine)
        {
            n.Acks[((AgentKind)a.Kind, a.Finding, a.Subject)] = a;
        }

        n.Changed();
    }

    public void SetCommandsConnected(string node, AgentKind kind, bool connected)
    {
        lock (_lock)
        {
            var kinds = ConnectedOf(node);
            var changed = connected ? kinds.Add(kind) : kinds.Remove(kind);
            if (!_nodes.TryGetValue(node, out var n))
            {
                if (kinds.Count == 0)
                {
                    _connected.Remove(node); // a stream of a node that never reported went away
                }

                return; // otherwise the node's first report picks the set up
            }

            if (!changed)
            {
                return;
            }

            n.Changed();
            _version++;
            PublishIfChanged(n, _time.GetUtcNow());
        }
    }

    // Command streams are counted per name, also of nodes that have not reported yet; a node's record shares the set.
    private HashSet<AgentKind> ConnectedOf(string node)
    {
        if (!_connected.TryGetValue(node, out var kinds))
        {
            _connected[node] = kinds = [];
        }

        return kinds;
    }

    /// <summary>
    /// Every node, as one response kept while nothing changed: no node reported, came, went or crossed its next
    /// stale/missing moment. ListNodes over 10,000 nodes then costs the serialization only. Shared: do not modify.
    /// </summary>
    public ListNodesResponse ListAllNodes()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (_listCache is { } c && c.Version == _version && now < c.Until)
            {
                return c.Response;
            }

            var response = new ListNodesResponse { At = Timestamp.FromDateTimeOffset(now) };
            var until = DateTimeOffset.MaxValue;
            foreach (var name in NamesInOrder())
            {
                var n = _nodes[name];
                response.Nodes.Add(Summarize(n, now));
                until = n.SummaryUntil < until ? n.SummaryUntil : until;
            }

            _listCache = (_version, until, response);
            return response;
        }
    }

    /// <summary>A node comes (under _lock): the only way into <see cref="_nodes"/>, so the name order is sorted again.</summary>
    private void AddNode(NodeRecord n)
    {
        _nodes.Add(n.Name, n);
        _byName = null;
    }

    /// <summary>A node goes (under _lock): the only way out of <see cref="_nodes"/>.</summary>
    private bool RemoveNode(string name)
    {
        if (!_nodes.Remove(name))
        {
            return false;
        }

        _byName = null;
        return true;
    }

    /// <summary>Every node's name in ordinal order, sorted again only after a node came or went (under _lock).</summary>
    private string[] NamesInOrder()
    {
        if (_byName is null)
        {
            var names = _nodes.Keys.ToArray();
            Array.Sort(names, StringComparer.Ordinal);
            _byName = names;
        }

        return _byName;
    }

    public IReadOnlyList<NodeSummary> ListNodes(IReadOnlyCollection<NodeState>? states = null)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var list = new List<NodeSummary>(_nodes.Count);
            foreach (var name in NamesInOrder())
            {
                var s = Summarize(_nodes[name], now);
                if (states is null || states.Count == 0 || states.Contains(s.State))
                {
                    list.Add(s);
                }
            }

            return list;
        }
    }

    /// <summary>The check <paramref name="check"/> as <paramref name="node"/>'s <paramref name="agent"/> last reported it (a copy), or null.</summary>
    public CheckResult? GetCheck(string node, AgentKind agent, string check)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(node, out var n) && n.Agents.TryGetValue(agent, out var a)
                ? a.State.Checks.FirstOrDefault(c => c.Name == check)?.Clone()
                : null;
        }
    }

    public NodeDetail? GetNode(string name)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!_nodes.TryGetValue(name, out var n))
            {
                return null;
            }

            var detail = new NodeDetail { Summary = Summarize(n, now) };
            foreach (var a in n.Agents.Values.OrderBy(a => a.Kind))
            {
                detail.Checks.AddRange(a.State.Checks.Select(c =>
                {
                    var copy = c.Clone();
                    copy.Agent = a.Kind;
                    return copy;
                }));
                detail.Findings.AddRange(a.State.Findings.Select(f => Decorate(f, n, a.Kind, now)));
            }

            detail.Events.AddRange(n.RecentEvents.Select(e =>
            {
                var copy = e.Clone();
                copy.Node = n.Name;
                return copy;
            }));
            return detail;
        }
    }

    /// <param name="includeAcknowledged">Also the findings an admin's acknowledgement hides (with who, why, until when).</param>
    public IReadOnlyList<Finding> ListFindings(string? node, string? kind, AgentKind agent, int limit, bool includeAcknowledged = false)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var nodes = string.IsNullOrEmpty(node)
                ? NamesInOrder().Select(name => _nodes[name])
                : _nodes.TryGetValue(node, out var one) ? [one] : Enumerable.Empty<NodeRecord>();
            var result = new List<Finding>();
            foreach (var n in nodes)
            {
                foreach (var a in n.Agents.Values.OrderBy(a => a.Kind))
                {
                    if (agent != AgentKind.Unspecified && a.Kind != agent)
                    {
                        continue;
                    }

                    foreach (var f in a.State.Findings)
                    {
                        if ((string.IsNullOrEmpty(kind) || f.Kind == kind) && (includeAcknowledged || n.Acked(a.Kind, f, now) is null))
                        {
                            result.Add(Decorate(f, n, a.Kind, now));
                            if (result.Count >= limit)
                            {
                                return result;
                            }
                        }
                    }
                }
            }

            return result;
        }
    }

    /// <summary>
    /// Re-judges every node against the clock: publishes nodes that went stale or missing to this instance's watchers
    /// and, with <paramref name="exportMetrics"/> (the lease holder), sets the node metrics; the others remove theirs,
    /// so an alert fires once, not once per instance.
    /// </summary>
    public void Sweep(bool exportMetrics = true)
    {
        var now = _time.GetUtcNow();
        var counts = System.Enum.GetValues<NodeState>().Where(s => s != NodeState.Unspecified).ToDictionary(s => s, _ => 0);
        lock (_lock)
        {
            foreach (var n in _nodes.Values)
            {
                var s = PublishIfChanged(n, now);
                counts[s.State]++;
            }
        }

        foreach (var (state, count) in counts)
        {
            if (exportMetrics)
            {
                NodesByState.WithLabels(state.Name()).Set(count);
            }
            else
            {
                NodesByState.RemoveLabelled(state.Name());
            }
        }
    }

    /// <summary>Forgets nodes silent for longer than missing + retention, in memory and on disk.</summary>
    public async Task ForgetOldNodesAsync(StoreOp? fence = null)
    {
        var cutoff = _time.GetUtcNow() - MissingAfter - TimeSpan.FromDays(_options.RetentionDays);
        List<string> gone;
        lock (_lock)
        {
            gone = _nodes.Values.Where(n => n.Agents.Count == 0 ? n.FirstSeen < cutoff : n.Agents.Values.Max(a => a.LastReport) < cutoff)
                .Select(n => n.Name).ToList();
        }

        if (gone.Count == 0)
        {
            return;
        }

        // Durable, then visible: deleted (if the lease still holds), then forgotten here.
        await _writer.WriteAsync(fence is null ? new ForgetNodes(gone) : new StoreBatch([fence, new ForgetNodes(gone)])).ConfigureAwait(false);
        lock (_lock)
        {
            foreach (var name in gone)
            {
                Remove(name);
            }
        }

        Log.Forgot(_logger, gone.Count, string.Join(", ", gone.Take(10)));
    }

    // Under _lock, after the store deleted the node: gone from memory, and watchers hear of it.
    private void Remove(string name)
    {
        if (RemoveNode(name))
        {
            _version++;
            _feed.Publish(new WatchEvent { At = Timestamp.FromDateTimeOffset(_time.GetUtcNow()), NodeRemoved = name });
        }

        if (_connected.TryGetValue(name, out var kinds) && kinds.Count == 0)
        {
            _connected.Remove(name);
        }
    }

    /// <summary>Why an admin's lifecycle action was refused, as the gRPC status it becomes.</summary>
    public sealed class LifecycleRefusal(Grpc.Core.StatusCode status, string message) : Exception(message)
    {
        public Grpc.Core.StatusCode Status { get; } = status;
    }

    /// <summary>
    /// Forgets a decommissioned node: its rows (agents, acknowledgements) deleted together with <paramref name="audit"/>,
    /// then gone from memory and from every watcher. Refused while the node still reports (its last report within 3
    /// heartbeats: it is not stale) unless <paramref name="force"/>: a node that keeps reporting comes back at once.
    /// History rows stay until retention takes them.
    /// </summary>
    public async Task<NodeSummary> ForgetAsync(string name, bool force, Func<NodeSummary, AddAudit> audit, CancellationToken ct = default)
    {
        using var serial = await _perNode.EnterAsync(name, ct).ConfigureAwait(false); // not between a report's decision and its write
        NodeSummary summary;
        lock (_lock)
        {
            if (!_nodes.TryGetValue(name, out var n))
            {
                throw new LifecycleRefusal(Grpc.Core.StatusCode.NotFound, $"no node \"{Contracts(name)}\"");
            }

            summary = Summarize(n, _time.GetUtcNow()).Clone();
            if (!force && summary.State is not (NodeState.Stale or NodeState.Missing))
            {
                var ago = summary.LastReport is { } t ? NodeJudge.Human(_time.GetUtcNow() - t.ToDateTimeOffset()) + " ago" : "recently";
                throw new LifecycleRefusal(Grpc.Core.StatusCode.FailedPrecondition,
                    $"node {Contracts(name)} still reports (last report {ago}, state {summary.State.Name()}): stop its agents first, or forget it with --force (it comes back at its next report)");
            }
        }

        var entry = audit(summary);
        await _writer.WriteAsync(new StoreBatch([new ForgetNodes([name]), entry])).ConfigureAwait(false);
        lock (_lock)
        {
            Remove(name);
            if (_forgotten.Count >= 10_000)
            {
                _forgotten.Clear(); // a bound; the window it guards is one read
            }

            _forgotten[name] = ++_localWrites;
        }

        return summary;
    }

    /// <summary>
    /// Acknowledges the finding <paramref name="id"/> (<see cref="FindingIds"/>) until <paramref name="until"/>, or with
    /// <paramref name="remove"/> ends its acknowledgement; stored together with <paramref name="audit"/>, then shown.
    /// </summary>
    public async Task<Finding> AcknowledgeAsync(string id, DateTimeOffset until, string by, string reason, bool remove, Func<Finding, AddAudit> audit, CancellationToken ct = default)
    {
        string? nodeName = null;
        lock (_lock)
        {
            nodeName = FindFinding(id)?.Node.Name;
        }

        if (nodeName is null)
        {
            throw new LifecycleRefusal(Grpc.Core.StatusCode.NotFound, $"no finding {Contracts(id)} (agentctl findings --all lists every finding with its id)");
        }

        using var serial = await _perNode.EnterAsync(nodeName, ct).ConfigureAwait(false);
        StoreOp op;
        Finding shown;
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            // Looked up again in the node's turn: a report may have resolved it meanwhile.
            if (FindFinding(id) is not { } found)
            {
                throw new LifecycleRefusal(Grpc.Core.StatusCode.NotFound, $"finding {Contracts(id)} resolved meanwhile");
            }

            var (n, agent, f) = found;
            shown = Decorate(f, n, agent, now);
            if (remove)
            {
                if (n.Acked(agent, f, now) is null)
                {
                    throw new LifecycleRefusal(Grpc.Core.StatusCode.FailedPrecondition, $"finding {Contracts(id)} is not acknowledged");
                }

                op = new DeleteAck(n.Name, (int)agent, f.Kind, f.Subject);
                shown.Acknowledged = null;
            }
            else
            {
                var ack = new SaveAck(n.Name, (int)agent, f.Kind, f.Subject, f.FirstSeen?.ToDateTimeOffset().ToUnixTimeMilliseconds() ?? 0,
                    (int)f.Severity, now.ToUnixTimeMilliseconds(), until.ToUnixTimeMilliseconds(), by, reason);
                op = ack;
                shown.Acknowledged = ToAcknowledgement(ack);
            }
        }

        var entry = audit(shown);
        await _writer.WriteAsync(new StoreBatch([op, entry])).ConfigureAwait(false);
        lock (_lock)
        {
            if (_nodes.TryGetValue(nodeName, out var n))
            {
                switch (op)
                {
                    case SaveAck a:
                        n.Acks[((AgentKind)a.Kind, a.Finding, a.Subject)] = a;
                        break;
                    case DeleteAck d:
                        n.Acks.Remove(((AgentKind)d.Kind, d.Finding, d.Subject));
                        break;
                    default:
                        break;
                }

                n.LocalWriteAt = n.LocalAckWriteAt = ++_localWrites;
                n.Changed();
                _version++;
                PublishIfChanged(n, _time.GetUtcNow());
            }
        }

        return shown;
    }

    /// <summary>The acknowledgements that hold now for the findings of (node, agent): what its report's answer carries.</summary>
    public IReadOnlyList<Acknowledgement> AcknowledgedFor(string node, AgentKind agent)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var n) || n.Acks.Count == 0 || !n.Agents.TryGetValue(agent, out var a))
            {
                return [];
            }

            return [.. a.State.Findings.Select(f => n.Acked(agent, f, now)).OfType<SaveAck>().Select(ToAcknowledgement)];
        }
    }

    private (NodeRecord Node, AgentKind Agent, Finding Finding)? FindFinding(string id)
    {
        if (id.Length != FindingIds.Length)
        {
            return null;
        }

        (NodeRecord, AgentKind, Finding)? found = null;
        foreach (var n in _nodes.Values)
        {
            foreach (var a in n.Agents.Values)
            {
                foreach (var f in a.State.Findings)
                {
                    if (FindingIds.Of(n.Name, a.Kind, f.Kind, f.Subject) == id)
                    {
                        // Two findings with one id (a node may choose its subjects): neither is acknowledged by it.
                        found = found is null ? (n, a.Kind, f)
                            : throw new LifecycleRefusal(Grpc.Core.StatusCode.FailedPrecondition, $"finding id {id} names more than one finding; acknowledge neither by it");
                    }
                }
            }
        }

        return found;
    }

    private static Acknowledgement ToAcknowledgement(SaveAck a) => new()
    {
        By = a.By,
        Reason = a.Reason,
        At = Timestamp.FromDateTimeOffset(FromMs(a.AtMs)),
        Until = Timestamp.FromDateTimeOffset(FromMs(a.UntilMs)),
        Severity = (Severity)a.Severity,
        Kind = a.Finding,
        Subject = a.Subject,
    };

    // A name or id from a caller, for a message: bounded.
    private static string Contracts(string s) => ReportLimits.Cut(s, 64);

    private NodeSummary PublishIfChanged(NodeRecord n, DateTimeOffset now)
    {
        var s = Summarize(n, now);
        if (n.Published is null || !SameForWatchers(n.Published, s))
        {
            if (n.Published is not null && n.Published.State != s.State)
            {
                Log.NodeStateChanged(_logger, n.Name, n.Published.State.Name(), s.State.Name(), s.Summary);
            }

            n.Published = s;
            _feed.Publish(new WatchEvent { At = Timestamp.FromDateTimeOffset(now), Node = s });
        }

        return s;
    }

    // last_report changes with every report; watchers care about everything else.
    private static bool SameForWatchers(NodeSummary a, NodeSummary b)
    {
        if (a.State != b.State || a.FailingChecks != b.FailingChecks || a.WarningChecks != b.WarningChecks
            || a.Findings != b.Findings || a.AcknowledgedFindings != b.AcknowledgedFindings || a.Summary != b.Summary || a.Agents.Count != b.Agents.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Agents.Count; i++)
        {
            if (a.Agents[i].Kind != b.Agents[i].Kind || a.Agents[i].Version != b.Agents[i].Version
                || a.Agents[i].CommandsConnected != b.Agents[i].CommandsConnected)
            {
                return false;
            }
        }

        return true;
    }

    private NodeSummary Summarize(NodeRecord n, DateTimeOffset now) => n.Summary(now, MissingAfter);

    private static Finding Decorate(Finding f, NodeRecord node, AgentKind agent, DateTimeOffset now)
    {
        var copy = f.Clone();
        copy.Node = node.Name;
        copy.Agent = agent;
        copy.Id = FindingIds.Of(node.Name, agent, f.Kind, f.Subject);
        if (node.Acked(agent, f, now) is { } a)
        {
            copy.Acknowledged = ToAcknowledgement(a);
        }

        return copy;
    }

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    // The report's sent_at as the agent stamped it (clamped), in the store's milliseconds; 0 when it has none.
    private static long SentAtMs(ReportRequest r) => r.SentAt is { } t ? t.ToDateTimeOffset().ToUnixTimeMilliseconds() : 0;

    private static partial class Log
    {
        [LoggerMessage(2202, LogLevel.Information, "node {Node}: {From} -> {To} {Summary}")]
        public static partial void NodeStateChanged(ILogger logger, string node, string from, string to, string summary);

        [LoggerMessage(2203, LogLevel.Information, "forgot {Count} nodes silent past retention: {Nodes}")]
        public static partial void Forgot(ILogger logger, int count, string nodes);

        [LoggerMessage(2205, LogLevel.Information, "node {Node}: a {Agent} report sent at {SentMs} is older than the stored one sent at {StoredMs}: superseded, not stored")]
        public static partial void Superseded(ILogger logger, string node, string agent, long sentMs, long storedMs);

        [LoggerMessage(2204, LogLevel.Debug, "node {Node}: report decided again against the stored state ({Reason})")]
        public static partial void DecidedAgain(ILogger logger, string node, string reason);
    }
}
