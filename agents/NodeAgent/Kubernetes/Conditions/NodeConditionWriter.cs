using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

/// <summary>
/// Writes the agent's problem families to its own Node as conditions (see <see cref="ConditionFamilies"/>) with a
/// strategic-merge patch of /status that names only the agent's own types: kubelet's Ready, node-problem-detector's
/// and anyone else's conditions are never touched. On start it reads the Node and continues from what is there (a
/// True condition stays True with its transition time). lastTransitionTime moves only when the status changes;
/// lastHeartbeatTime (and the message) every HeartbeatPeriod. A type the agent wrote before (remembered in
/// StateDirectory) and the config no longer has is deleted once. A failed write is retried with backoff and shown as
/// the check kubernetes.conditions.
/// </summary>
public sealed partial class NodeConditionWriter : BackgroundService
{
    public const string Check = "kubernetes.conditions";

    private static readonly Counter WriteFailures = Metrics.CreateCounter("toolforge_node_condition_write_failures_total", "Node status patches that failed.");

    private readonly string _stateDirectory;
    private readonly NodeConditionsOptions _o;
    private readonly KubeClient _client;
    private readonly AgentState _state;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeConditionWriter> _logger;
    private readonly List<ConditionFamily> _families;
    /// <summary>Between attempts to write the conditions after a failure: 2 s doubling, at most 2 min.</summary>
    private static readonly RetryBounds Rewrite = new(Initial: TimeSpan.FromSeconds(2), Max: TimeSpan.FromMinutes(2));

    private readonly RetryStreak _streak;
    private readonly Dictionary<string, KubeNodeCondition> _current = new(StringComparer.Ordinal);
    private List<string>? _toDelete;
    private DateTimeOffset _retryAt;
    private DateTimeOffset? _startedAt;

    /// <summary>
    /// How long a healthy verdict waits for every source check to answer once; past it, a check that never answers
    /// (it has its own timeout, so only a bug does that) no longer holds the others back.
    /// </summary>
    public static readonly TimeSpan StartGrace = TimeSpan.FromMinutes(5);

    public NodeConditionWriter(IOptions<NodeConditionsOptions> options, IOptions<NodeOptions> node, KubeClient client, ClusterView cluster, AgentState state, TimeProvider time, ILogger<NodeConditionWriter> logger)
    {
        _stateDirectory = node.Value.StateDirectory;
        _o = options.Value;
        _client = client;
        NodeName = cluster.NodeName;
        _state = state;
        _time = time;
        _logger = logger;
        _families = ConditionFamilies.Resolve(_o);
        // One WRN when writes start failing (the check says every retry), one line when a write goes through again.
        _streak = new RetryStreak(Rewrite, time,
            (ex, wait) => Log.WriteFailed(_logger, NodeName, _client.Why(ex), wait.TotalSeconds),
            (failures, length) => Log.Written(_logger, NodeName, failures, length.TotalSeconds));
    }

    public string NodeName { get; }

    private string OwnedFile => Path.Combine(_stateDirectory, "node-agent.conditions.json");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_o.EvaluateInterval, _time);
        do
        {
            await SyncOnceAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One round: read the Node if not yet, judge every family, patch what changed or is due a heartbeat.</summary>
    public async Task SyncOnceAsync(CancellationToken ct)
    {
        var now = Seconds(_time.GetUtcNow());
        if (now < _retryAt)
        {
            return;
        }

        try
        {
            if (_toDelete is null)
            {
                await LoadAsync(ct).ConfigureAwait(false);
            }

            var patch = Due(now);
            if (patch.Count == 0 && _toDelete!.Count == 0)
            {
                return;
            }

            await PatchAsync(patch, _toDelete!, ct).ConfigureAwait(false);
            foreach (var c in patch)
            {
                _current[c.Type] = c;
            }

            if (_toDelete!.Count > 0)
            {
                Log.Deleted(_logger, NodeName, string.Join(", ", _toDelete!));
                _toDelete!.Clear();
            }

            SaveOwned();
            _streak.Succeeded();
            _state.SetCheck(Check, CheckState.Ok, $"{_current.Count} condition(s) on node {NodeName}: "
                + string.Join(", ", _current.Values.OrderBy(c => c.Type, StringComparer.Ordinal).Select(c => $"{c.Type}={c.Status}")));
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && KubeClient.IsApiFailure(ex))
        {
            WriteFailures.Inc();
            var wait = _streak.Failed(ex);
            _retryAt = now + wait;
            var why = _client.Why(ex);
            _state.SetCheck(Check, CheckState.Warning, $"cannot write node {NodeName}'s conditions: {why}; retrying in {wait.TotalSeconds:0}s");
        }
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        KubeNode node;
        using (var cts = _client.Deadline(ct))
        {
            node = await _client.Api.GetAsync("/api/v1/nodes/" + Uri.EscapeDataString(NodeName), KubeJson.Default.KubeNode, cts.Token).ConfigureAwait(false);
        }

        var mine = _families.Select(f => f.Type).ToHashSet(StringComparer.Ordinal);
        var present = node.Status?.Conditions ?? [];
        foreach (var c in present.Where(c => mine.Contains(c.Type)))
        {
            _current[c.Type] = c;
        }

        var before = LoadOwned();
        _toDelete = before.Where(t => !mine.Contains(t) && present.Any(c => c.Type == t)).ToList();
    }

    private List<KubeNodeCondition> Due(DateTimeOffset now)
    {
        var checks = _state.GetChecks();
        _startedAt ??= now;
        var waitingFor = now - _startedAt.Value < StartGrace ? _state.NotYetAnswered() : null;
        var due = new List<KubeNodeCondition>();
        foreach (var family in _families)
        {
            if (ConditionFamilies.Judge(family, checks, waitingFor) is not { } v)
            {
                continue; // nothing definite yet: the API keeps what it has
            }

            var status = v.Problem ? "True" : "False";
            var had = _current.GetValueOrDefault(v.Type);
            var changed = had is null || had.Status != status || had.Reason != v.Reason;
            var heartbeatDue = had?.LastHeartbeatTime is not { } hb || now - hb >= _o.HeartbeatPeriod;
            if (!changed && !heartbeatDue)
            {
                continue;
            }

            due.Add(new KubeNodeCondition
            {
                Type = v.Type,
                Status = status,
                Reason = v.Reason,
                Message = v.Message,
                LastHeartbeatTime = now,
                LastTransitionTime = had is not null && had.Status == status && had.LastTransitionTime is { } t ? t : now,
            });
        }

        return due;
    }

    private async Task PatchAsync(List<KubeNodeCondition> conditions, List<string> delete, CancellationToken ct)
    {
        var list = new JsonArray();
        foreach (var c in conditions)
        {
            list.Add((JsonNode)new JsonObject
            {
                ["type"] = c.Type,
                ["status"] = c.Status,
                ["reason"] = c.Reason,
                ["message"] = c.Message,
                ["lastHeartbeatTime"] = KubeTime.Format(c.LastHeartbeatTime!.Value),
                ["lastTransitionTime"] = KubeTime.Format(c.LastTransitionTime!.Value),
            });
        }

        foreach (var t in delete)
        {
            list.Add((JsonNode)new JsonObject { ["$patch"] = "delete", ["type"] = t });
        }

        var body = new JsonObject { ["status"] = new JsonObject { ["conditions"] = list } }.ToJsonString();
        using var cts = _client.Deadline(ct);
        await _client.Api.PatchAsync($"/api/v1/nodes/{Uri.EscapeDataString(NodeName)}/status", "application/strategic-merge-patch+json", body, KubeJson.Default.KubeCreated, cts.Token).ConfigureAwait(false);
    }

    private List<string> LoadOwned()
    {
        try
        {
            return File.Exists(OwnedFile) ? JsonSerializer.Deserialize(File.ReadAllText(OwnedFile), OwnedJson.Default.ListString) ?? [] : [];
        }
        catch (JsonException ex)
        {
            Log.OwnedUnreadable(_logger, OwnedFile, ex.Message);
            return [];
        }
    }

    private void SaveOwned() =>
        DurableFile.Write(OwnedFile, JsonSerializer.Serialize(_families.Select(f => f.Type).Order(StringComparer.Ordinal).ToList(), OwnedJson.Default.ListString));

    private static DateTimeOffset Seconds(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    private static partial class Log
    {
        [LoggerMessage(EventIds.ConditionsWriteFailed, LogLevel.Warning, "cannot write node {Node}'s conditions: {Reason}; retrying in {Seconds:0}s")]
        public static partial void WriteFailed(ILogger logger, string node, string reason, double seconds);

        [LoggerMessage(EventIds.ConditionsWrittenAgain, LogLevel.Information, "node {Node}'s conditions written again after {Failures} failed attempts ({Seconds:0}s)")]
        public static partial void Written(ILogger logger, string node, int failures, double seconds);

        [LoggerMessage(EventIds.ConditionsDeleted, LogLevel.Information, "node {Node}: conditions this agent wrote before and no longer owns removed: {Types}")]
        public static partial void Deleted(ILogger logger, string node, string types);

        [LoggerMessage(EventIds.ConditionsOwnedUnreadable, LogLevel.Warning, "cannot read {File} (which condition types this agent wrote before): {Reason}; none will be removed")]
        public static partial void OwnedUnreadable(ILogger logger, string file, string reason);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<string>))]
internal sealed partial class OwnedJson : System.Text.Json.Serialization.JsonSerializerContext;
