using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>
/// Remediation pacing, owned by the coordinator: which pool a node is in (by its name, from the configuration: a node
/// cannot choose its pool), each lease decision made by <see cref="LeasePacer"/> and each admin action by
/// <see cref="RemediationControl"/>, inside one store transaction that holds the pool (so several instances on
/// PostgreSQL never grant past the pool's limit). Nothing is kept in memory: every answer is what the store holds at
/// that moment. Time is this instance's clock (instances keep theirs within NTP's bounds; a lease lives minutes).
/// </summary>
public sealed partial class RemediationLeases(IStoreEngine store, StateStore state, AlertGate alerts, IOptionsMonitor<RemediationOptions> options, TimeProvider time, ILogger<RemediationLeases> logger)
{
    private static readonly Counter Answers = Metrics.CreateCounter(
        "toolforge_coordinator_remediation_lease_answers_total", "Remediation lease requests answered, by pool and answer.", "pool", "answer");

    private static readonly Gauge Tripped = Metrics.CreateGauge(
        "toolforge_coordinator_remediation_breaker_tripped", "1 while a pool's storm breaker is tripped (no lease is taken until an admin resets it).", "pool");

    /// <summary>The pool <paramref name="node"/> belongs to, or null with why not.</summary>
    public (string Name, RemediationPoolOptions Pool)? PoolOf(string node, out string? why)
    {
        var matches = options.CurrentValue.Pools.Where(p => Names(p.Value, node)).ToList();
        why = matches.Count switch
        {
            0 => $"{node} is in no remediation pool ({RemediationOptions.Section}:Pools): it is not remediated without an admin",
            > 1 => $"{node} is in {matches.Count} remediation pools ({string.Join(", ", matches.Select(m => m.Key))}); a node belongs to one: fix {RemediationOptions.Section}:Pools",
            _ => null,
        };
        return matches.Count == 1 ? (matches[0].Key, matches[0].Value) : null;
    }

    // Each pattern compiled once (a configuration names a few; the breaker's count asks them of every known node).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Text.RegularExpressions.Regex> Globs = new(StringComparer.Ordinal);

    // Each window parsed once (validated at start, so it parses).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, MaintenanceWindow> Windows = new(StringComparer.Ordinal);

    private static bool Names(RemediationPoolOptions pool, string node) => pool.Nodes.Any(n => Globs.GetOrAdd(n, SecurityPolicy.Glob).IsMatch(node));

    /// <summary>How many nodes the coordinator knows that <paramref name="pool"/> names (the storm breaker's share counts of it).</summary>
    private int Known(RemediationPoolOptions pool) => state.NodeNames().Count(n => Names(pool, n));

    /// <summary>Decides <paramref name="ask"/> for its node's pool, stored before it is answered.</summary>
    public async Task<(string Pool, LeaseAnswer Answer)> AskAsync(LeaseAsk ask, CancellationToken ct)
    {
        if (PoolOf(ask.Node, out var why) is not { } found)
        {
            return (string.Empty, LeaseAnswer.Refused(why!));
        }

        var (name, pool) = found;
        if (!ask.Release && await alerts.RefusesAsync(pool, ask.Step, take: ask.Token == 0, ct).ConfigureAwait(false) is { } alerting)
        {
            Answers.WithLabels(name, "alerting").Inc();
            return (name, LeaseAnswer.Refused(alerting, TimeSpan.FromMinutes(1)));
        }

        var windows = pool.Windows.Select(w => Windows.GetOrAdd(w, text => MaintenanceWindow.Parse(text, out _)!)).ToList();
        var known = Known(pool);
        var tripped = false;
        var answer = await Task.Run(() => store.DecideRemediationPool(name, row =>
        {
            // The instant is read once the pool is held: a decision waiting for another's lock must not be dated
            // before the change that other one wrote.
            var (a, w) = LeasePacer.Decide(pool, windows, row, ask, time.GetUtcNow(), known);
            tripped = row.BreakerAtMs == 0 && w?.After.BreakerAtMs > 0;
            return (a, w);
        }), ct).ConfigureAwait(false);
        var kind = answer.Granted ? (ask.Token == 0 ? "granted" : "renewed") : answer.Ended ? "ended" : ask.Release && !answer.Lost ? "released" : answer.Lost ? "lost" : "refused";
        Answers.WithLabels(name, kind).Inc();
        if (tripped)
        {
            Log.BreakerTripped(logger, name, answer.Refusal);
        }
        else if (kind is "granted" or "released" or "lost" or "ended")
        {
            Log.Lease(logger, name, ask.Node, ask.Incident, ask.Step, kind, answer.Granted ? answer.Token : ask.Token, answer.Refusal);
        }

        return (name, answer);
    }

    /// <summary>
    /// An admin's action on <paramref name="target"/> (a pool's name, else a node's): the refusal, or the pool as it is
    /// after the action, stored with <paramref name="audit"/>'s row in one transaction.
    /// </summary>
    public async Task<(string? Refusal, RemediationPoolInfo? Pool)> ControlAsync(RemediationAction action, string target, string by, string reason, Func<string, StoreOp> audit, CancellationToken ct)
    {
        string name;
        RemediationPoolOptions pool;
        string? node = null;
        if (options.CurrentValue.Pools.TryGetValue(target, out var named))
        {
            (name, pool) = (target, named);
        }
        else if (target.Contains('*', StringComparison.Ordinal) || target.Contains('?', StringComparison.Ordinal))
        {
            return ($"\"{target}\": name one node or one pool, not a pattern", null);
        }
        else if (PoolOf(target, out var why) is { } found)
        {
            (name, pool, node) = (found.Name, found.Pool, target);
        }
        else
        {
            return ($"\"{target}\" is neither a remediation pool ({string.Join(", ", options.CurrentValue.Pools.Keys.Order(StringComparer.Ordinal))}) nor a node of one: {why}", null);
        }

        var known = Known(pool);
        var now = time.GetUtcNow();
        string? refusal = null;
        RemediationPoolRow? after = null;
        await Task.Run(() => store.DecideRemediationPool(name, row =>
        {
            now = time.GetUtcNow(); // once the pool is held, as for a lease
            var (r, w) = RemediationControl.Apply(row, action, node, by, reason, now);
            refusal = r;
            if (w is null)
            {
                return (0, null);
            }

            var leases = row.Leases.Where(l => !w.DeleteNodes.Contains(l.Node)).ToList();
            after = w.After with { Leases = leases };
            return (0, w with { Also = [audit($"pool={name}{(node is null ? string.Empty : $" node={node}")}")] });
        }), ct).ConfigureAwait(false);
        if (refusal is not null)
        {
            return (refusal, null);
        }

        return (null, WithNodeHolds(Info(name, pool, after!, now, known), pool));
    }

    /// <summary>
    /// The storm breakers as the store has them, for the metric: called each sweep by the instance holding the sweeper
    /// lease (<paramref name="leader"/>), so the alert follows a reset made through any instance, and a restart; the
    /// others export 0 (the alert takes the maximum over instances).
    /// </summary>
    /// <remarks>
    /// Never blocks the sweep: the store is read in the background, one read at a time (a database cut off does not
    /// answer for its whole command timeout, and the sweep must go on judging nodes and giving up the lease meanwhile).
    /// </remarks>
    public void ExportBreakers(bool leader)
    {
        var pools = options.CurrentValue.Pools.Keys.ToList();
        lock (_exported)
        {
            // A pool no longer configured (removed by a reload while tripped) exports 0, not its last value for ever.
            foreach (var gone in _exported.Except(pools, StringComparer.Ordinal).ToList())
            {
                Tripped.WithLabels(gone).Set(0);
                _exported.Remove(gone);
            }

            _exported.UnionWith(pools);
        }

        if (pools.Count == 0)
        {
            return;
        }

        if (!leader)
        {
            pools.ForEach(p => Tripped.WithLabels(p).Set(0));
            return;
        }

        if (_export is { IsCompleted: false })
        {
            return;
        }

        _export = Task.Run(() =>
        {
            try
            {
                var tripped = store.LoadRemediationPools().Where(r => r.BreakerAtMs > 0).Select(r => r.Pool).ToHashSet(StringComparer.Ordinal);
                pools.ForEach(p => Tripped.WithLabels(p).Set(tripped.Contains(p) ? 1 : 0));
                _exportProblem = null;
            }
            catch (Exception ex)
            {
                // The gauges keep their last values; the next sweep reads again. Said once per outage (this task is
                // never awaited: nothing it throws may go unseen).
                if (_exportProblem is null)
                {
                    Log.BreakersUnread(logger, ex is StoreUnavailableException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}");
                }

                _exportProblem = ex.Message;
            }
        });
    }

    private readonly HashSet<string> _exported = new(StringComparer.Ordinal);
    private Task? _export;
    private string? _exportProblem;

    /// <summary>Each configured pool, as the store has it now.</summary>
    public async Task<IReadOnlyList<RemediationPoolInfo>> ListAsync(CancellationToken ct)
    {
        var rows = await Task.Run(store.LoadRemediationPools, ct).ConfigureAwait(false);
        var now = time.GetUtcNow();
        return options.CurrentValue.Pools.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => WithNodeHolds(Info(p.Key, p.Value, rows.FirstOrDefault(r => r.Pool == p.Key) ?? new RemediationPoolRow(p.Key, 0, 0, []), now, Known(p.Value)), p.Value))
            .ToList();
    }

    // The holds the pool's node-agents report on their own nodes (a hold label or annotation, puppet disabled): they stop
    // those nodes' incidents there, so the status shows them beside the coordinator's own pauses.
    private RemediationPoolInfo WithNodeHolds(RemediationPoolInfo info, RemediationPoolOptions pool)
    {
        foreach (var node in state.NodeNames().Where(n => Names(pool, n)).Order(StringComparer.Ordinal))
        {
            if (state.GetCheck(node, AgentKind.Node, RemediationHolds.NodeCheck) is { State: CheckState.Warning } held)
            {
                info.Holds.Add(new RemediationHoldInfo { Node = node, Kind = RemediationHolds.Node, By = "node-agent", Reason = held.Message, At = held.Since ?? held.ObservedAt });
            }
        }

        return info;
    }

    private static RemediationPoolInfo Info(string name, RemediationPoolOptions pool, RemediationPoolRow row, DateTimeOffset now, int known)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        static Timestamp At(long ms) => Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(ms));
        var info = new RemediationPoolInfo
        {
            Name = name,
            MaxConcurrent = pool.MaxConcurrent,
            MinGap = Duration.FromTimeSpan(pool.MinGap),
            LeaseTtl = Duration.FromTimeSpan(pool.LeaseTtl),
            LastChangeAt = row.LastChangeMs > 0 ? At(row.LastChangeMs) : null,
            BreakerAt = row.BreakerAtMs > 0 ? At(row.BreakerAtMs) : null,
            BreakerReason = row.BreakerReason,
            PausedBy = row.PausedBy,
            PausedReason = row.PausedReason,
            PausedAt = row.PausedAtMs > 0 ? At(row.PausedAtMs) : null,
            Candidates = row.Candidates.Count(c => c.AtMs > nowMs - (long)pool.BreakerWindow.TotalMilliseconds),
            KnownNodes = known,
        };
        info.Nodes.AddRange(pool.Nodes);
        info.Windows.AddRange(pool.Windows);
        info.Leases.AddRange(row.Leases.Where(l => l.ExpiresMs > nowMs).Select(l => new RemediationLeaseInfo
        {
            Node = l.Node,
            Incident = l.Incident,
            Step = l.Step,
            Token = (ulong)l.Token,
            AcquiredAt = At(l.AcquiredMs),
            RenewedAt = At(l.RenewedMs),
            ExpiresAt = At(l.ExpiresMs),
        }));
        info.Holds.AddRange(row.Holds.Select(h => new RemediationHoldInfo { Node = h.Node, Kind = h.Kind, Incident = h.Incident, By = h.By, Reason = h.Reason, At = At(h.AtMs) }));
        return info;
    }

    private static partial class Log
    {
        [LoggerMessage(2501, LogLevel.Information, "remediation pool {Pool}: {Node} (incident {Incident}, step {Step}): lease {Answer}, token {Token} {Why}")]
        public static partial void Lease(ILogger logger, string pool, string node, string incident, string step, string answer, long token, string why);

        [LoggerMessage(2502, LogLevel.Warning, "remediation pool {Pool}: {Why}")]
        public static partial void BreakerTripped(ILogger logger, string pool, string why);

        [LoggerMessage(2503, LogLevel.Warning, "the remediation breakers could not be read for the metrics: {Why}")]
        public static partial void BreakersUnread(ILogger logger, string why);
    }
}
