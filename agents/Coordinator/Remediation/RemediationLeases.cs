using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>
/// Remediation pacing, owned by the coordinator: which pool a node is in (by its name, from the configuration: a node
/// cannot choose its pool) and each lease decision made by <see cref="LeasePacer"/> inside one store transaction
/// that holds the pool (so several instances on PostgreSQL never grant past the pool's limit). Nothing is kept in
/// memory: every answer is what the store holds at that moment. Time is this instance's clock (instances keep theirs
/// within NTP's bounds; the lease lives minutes).
/// </summary>
public sealed partial class RemediationLeases(IStoreEngine store, IOptionsMonitor<RemediationOptions> options, TimeProvider time, ILogger<RemediationLeases> logger)
{
    private static readonly Counter Answers = Metrics.CreateCounter(
        "toolforge_coordinator_remediation_lease_answers_total", "Remediation lease requests answered, by pool and answer.", "pool", "answer");

    /// <summary>The pool <paramref name="node"/> belongs to, or null with why not.</summary>
    public (string Name, RemediationPoolOptions Pool)? PoolOf(string node, out string? why)
    {
        var matches = options.CurrentValue.Pools.Where(p => p.Value.Nodes.Any(n => SecurityPolicy.Glob(n).IsMatch(node))).ToList();
        why = matches.Count switch
        {
            0 => $"{node} is in no remediation pool ({RemediationOptions.Section}:Pools): it is not remediated without an admin",
            > 1 => $"{node} is in {matches.Count} remediation pools ({string.Join(", ", matches.Select(m => m.Key))}); a node belongs to one: fix {RemediationOptions.Section}:Pools",
            _ => null,
        };
        return matches.Count == 1 ? (matches[0].Key, matches[0].Value) : null;
    }

    /// <summary>Decides <paramref name="ask"/> for its node's pool, stored before it is answered.</summary>
    public async Task<(string Pool, LeaseAnswer Answer)> AskAsync(LeaseAsk ask, CancellationToken ct)
    {
        if (PoolOf(ask.Node, out var why) is not { } found)
        {
            return (string.Empty, LeaseAnswer.Refused(why!));
        }

        var (name, pool) = found;
        var windows = pool.Windows.Select(w => MaintenanceWindow.Parse(w, out _)!).ToList();
        var now = time.GetUtcNow();
        var answer = await Task.Run(() => store.DecideRemediationPool(name, row => LeasePacer.Decide(pool, windows, row, ask, now)), ct).ConfigureAwait(false);
        var kind = answer.Granted ? (ask.Token == 0 ? "granted" : "renewed") : ask.Release && !answer.Lost ? "released" : answer.Lost ? "lost" : "refused";
        Answers.WithLabels(name, kind).Inc();
        if (kind is "granted" or "released" or "lost")
        {
            Log.Lease(logger, name, ask.Node, ask.Incident, ask.Step, kind, answer.Granted ? answer.Token : ask.Token, answer.Refusal);
        }

        return (name, answer);
    }

    /// <summary>Each configured pool with its live leases, as the store has them now.</summary>
    public async Task<IReadOnlyList<(string Name, RemediationPoolOptions Pool, RemediationPoolRow? Row)>> ListAsync(CancellationToken ct)
    {
        var rows = await Task.Run(store.LoadRemediationPools, ct).ConfigureAwait(false);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        return options.CurrentValue.Pools.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => (p.Key, p.Value, rows.FirstOrDefault(r => r.Pool == p.Key) is { } r ? r with { Leases = r.Leases.Where(l => l.ExpiresMs > nowMs).ToList() } : null))
            .ToList();
    }

    private static partial class Log
    {
        [LoggerMessage(2501, LogLevel.Information, "remediation pool {Pool}: {Node} (incident {Incident}, step {Step}): lease {Answer}, token {Token} {Why}")]
        public static partial void Lease(ILogger logger, string pool, string node, string incident, string step, string answer, long token, string why);
    }
}
