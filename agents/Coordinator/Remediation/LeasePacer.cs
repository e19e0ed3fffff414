using System.Globalization;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>What a node-agent asks of its pool's lease.</summary>
/// <param name="Token">0: take; else the token it holds (renew, or give back with <paramref name="Release"/>).</param>
public sealed record LeaseAsk(string Node, string Incident, string Step, long Token, bool Release);

/// <summary>The answer: granted (with the token and how long it holds), or refused (why, when to ask again, whether the token is lost, whether the incident was ended by an admin).</summary>
public sealed record LeaseAnswer(bool Granted, long Token, TimeSpan ValidFor, string Refusal, TimeSpan RetryAfter, bool Lost, bool Ended = false)
{
    public static LeaseAnswer Refused(string why, TimeSpan retryAfter = default, bool lost = false, bool ended = false) => new(false, 0, TimeSpan.Zero, why, retryAfter, lost, ended);
}

/// <summary>
/// The pacing of one pool, decided on what the store holds (<see cref="RemediationPoolRow"/>), at <c>now</c>; a pure
/// function, so every rule is tested without a database or a clock:
/// <list type="bullet">
/// <item>an expired lease is gone (its node died or went silent): it frees its place, and it counts as the pool's
/// last change at its expiry;</item>
/// <item>an incident an admin cancelled is refused for good (<c>ended</c>), whether taken or renewed;</item>
/// <item>take: the node becomes a candidate (the storm breaker counts candidates within its window: more than
/// <see cref="RemediationPoolOptions.BreakerNodes"/>, or than <see cref="RemediationPoolOptions.BreakerPercent"/> % of
/// the pool's known nodes, trips it, and nothing is taken until an admin resets it); then refused while the breaker
/// is tripped, the pool or the node is paused, outside every maintenance window, with
/// <see cref="RemediationPoolOptions.MaxConcurrent"/> live leases, or sooner than
/// <see cref="RemediationPoolOptions.MinGap"/> after the pool's last change; else granted with a new fencing token,
/// one more than the pool's last. Asked again for the same incident (an answer lost on the way), the node's live
/// lease is renewed instead; a lease its earlier incident kept ends, and the new incident is judged as any take;</item>
/// <item>renew: only with the token and incident of the node's live lease (pauses, windows and the breaker stop new
/// leases, not ones under way; an admin ends one with a cancel); any other token is lost and its holder must not act;</item>
/// <item>release: with the token of the node's live lease; a release of a lease not held changes nothing.</item>
/// </list>
/// </summary>
public static class LeasePacer
{
    /// <summary>
    /// How long a cancelled incident is remembered: far longer than an incident lives (its agent is told "ended" at its
    /// next request and ends it; an agent away longer than this has no lease and no record of it either).
    /// </summary>
    public static readonly TimeSpan CancelledKept = TimeSpan.FromDays(90);

    public static (LeaseAnswer Answer, RemediationPoolWrite? Write) Decide(
        RemediationPoolOptions pool, IReadOnlyList<MaintenanceWindow> windows, RemediationPoolRow row, LeaseAsk ask, DateTimeOffset now, int knownNodes)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var ttlMs = (long)pool.LeaseTtl.TotalMilliseconds;
        var expired = row.Leases.Where(l => l.ExpiresMs <= nowMs).ToList();
        var live = row.Leases.Where(l => l.ExpiresMs > nowMs).ToList();
        var delete = expired.Select(l => l.Node).ToList();
        var after = row with
        {
            LastChangeMs = expired.Aggregate(row.LastChangeMs, (m, l) => Math.Max(m, l.ExpiresMs)),
            Candidates = row.Candidates.Where(c => c.AtMs > nowMs - (long)pool.BreakerWindow.TotalMilliseconds).ToList(),
            Holds = row.Holds.Where(h => h.Kind != RemediationHolds.Cancelled || h.AtMs > nowMs - (long)CancelledKept.TotalMilliseconds).ToList(),
        };
        var mine = live.FirstOrDefault(l => l.Node == ask.Node);
        (LeaseAnswer, RemediationPoolWrite?) Refuse(LeaseAnswer answer) =>
            (answer, delete.Count == 0 && Same(after, row) ? null : new RemediationPoolWrite(after, delete, null));

        if (after.Holds.FirstOrDefault(h => h.Kind == RemediationHolds.Cancelled && h.Node == ask.Node && h.Incident == ask.Incident) is { } cancelled && !ask.Release)
        {
            return Refuse(LeaseAnswer.Refused($"incident {ask.Incident} was cancelled by {cancelled.By} at {Format(cancelled.AtMs)}: {cancelled.Reason}; end it and do not ask again", lost: true, ended: true));
        }

        if (ask.Release)
        {
            if (mine is null || mine.Token != ask.Token)
            {
                return Refuse(LeaseAnswer.Refused($"no lease with token {ask.Token} is held by {ask.Node} (it expired, or was given back already)", lost: true));
            }

            delete.Add(mine.Node);
            return (new LeaseAnswer(false, mine.Token, TimeSpan.Zero, string.Empty, TimeSpan.Zero, false), new(after with { LastChangeMs = nowMs }, delete, null));
        }

        if (ask.Token != 0)
        {
            if (mine is null || mine.Token != ask.Token || mine.Incident != ask.Incident)
            {
                var why = mine is not null && mine.Incident != ask.Incident
                    ? $"token {ask.Token} is not held: {ask.Node}'s lease is for incident {mine.Incident}"
                    : expired.FirstOrDefault(l => l.Node == ask.Node && l.Token == ask.Token) is { } gone
                        ? $"token {ask.Token} expired at {Format(gone.ExpiresMs)} (not renewed within {Human(pool.LeaseTtl)})"
                        : $"token {ask.Token} is no longer held (expired, or given back)";
                return Refuse(LeaseAnswer.Refused(why + ": stop acting on it and take the lease again", lost: true));
            }

            return Grant(mine with { Step = ask.Step, RenewedMs = nowMs, ExpiresMs = nowMs + ttlMs }, after, delete, pool);
        }

        if (mine is not null && mine.Incident == ask.Incident)
        {
            return Grant(mine with { Step = ask.Step, RenewedMs = nowMs, ExpiresMs = nowMs + ttlMs }, after, delete, pool); // the answer was lost
        }

        if (mine is not null)
        {
            // The node's earlier incident never gave its lease back (it ended blocked, or the agent lost its record):
            // that lease ends here, and the new incident is judged like any other take (breaker, pauses, windows, the
            // limit, the gap): a lease held is no way past them.
            delete.Add(mine.Node);
            live.Remove(mine);
        }

        // A candidate: counted by the storm breaker whatever the answer.
        if (after.Candidates.All(c => c.Node != ask.Node))
        {
            after = after with { Candidates = [.. after.Candidates, new RemediationCandidateRow(ask.Node, nowMs)] };
        }

        if (after.BreakerAtMs > 0)
        {
            return Refuse(LeaseAnswer.Refused($"the pool's storm breaker tripped at {Format(after.BreakerAtMs)} ({after.BreakerReason}): no lease until an admin runs agentctl remediation reset-breaker {row.Pool}"));
        }

        var n = after.Candidates.Count;
        // The share counts from two candidates: one node asking is never a storm, whatever the pool's size (with the
        // default 30 %, a pool of three or fewer known nodes would otherwise trip at its first incident, every time).
        if (n > pool.BreakerNodes || (knownNodes > 0 && n > 1 && n * 100L > pool.BreakerPercent * (long)knownNodes))
        {
            var reason = $"{n} node(s) of the {knownNodes} known asked within {Human(pool.BreakerWindow)} (more than {pool.BreakerNodes}, or {pool.BreakerPercent} %): {string.Join(", ", after.Candidates.Select(c => c.Node))}";
            after = after with { BreakerAtMs = nowMs, BreakerReason = reason };
            return Refuse(LeaseAnswer.Refused($"the pool's storm breaker tripped now ({reason}): no lease until an admin runs agentctl remediation reset-breaker {row.Pool}"));
        }

        if (after.PausedBy.Length > 0)
        {
            return Refuse(LeaseAnswer.Refused($"the pool is paused by {after.PausedBy} since {Format(after.PausedAtMs)}: {after.PausedReason}"));
        }

        if (after.Holds.FirstOrDefault(h => h.Kind == RemediationHolds.Paused && h.Node == ask.Node) is { } paused)
        {
            return Refuse(LeaseAnswer.Refused($"{ask.Node} is paused by {paused.By} since {Format(paused.AtMs)}: {paused.Reason}"));
        }

        if (windows.Count > 0 && !windows.Any(w => w.Contains(now)))
        {
            var next = windows.Min(w => w.NextStart(now));
            return Refuse(LeaseAnswer.Refused($"outside the pool's maintenance windows ({string.Join("; ", windows.Select(w => w.Text))}); the next opens {Format(next.ToUnixTimeMilliseconds())}", next - now));
        }

        if (live.Count >= pool.MaxConcurrent)
        {
            var first = live.MinBy(l => l.ExpiresMs)!;
            var holders = string.Join(", ", live.Select(l => $"{l.Node} ({l.Step} since {Format(l.AcquiredMs)})"));
            return Refuse(LeaseAnswer.Refused($"{live.Count} of {pool.MaxConcurrent} node(s) of the pool in remediation: {holders}", TimeSpan.FromMilliseconds(Math.Max(1000, first.ExpiresMs - nowMs))));
        }

        var gapEnds = after.LastChangeMs + (long)pool.MinGap.TotalMilliseconds;
        if (pool.MinGap > TimeSpan.Zero && after.LastChangeMs > 0 && nowMs < gapEnds)
        {
            return Refuse(LeaseAnswer.Refused($"too soon: the pool's last lease was taken or ended {Format(after.LastChangeMs)}, and {Human(pool.MinGap)} must pass (until {Format(gapEnds)})", TimeSpan.FromMilliseconds(gapEnds - nowMs)));
        }

        var next2 = row.LastToken + 1;
        return Grant(new RemediationLeaseRow(ask.Node, ask.Incident, ask.Step, next2, nowMs, nowMs, nowMs + ttlMs), after with { LastToken = next2, LastChangeMs = nowMs }, delete, pool);
    }

    private static (LeaseAnswer, RemediationPoolWrite) Grant(RemediationLeaseRow lease, RemediationPoolRow after, List<string> delete, RemediationPoolOptions pool) =>
        (new LeaseAnswer(true, lease.Token, pool.LeaseTtl, string.Empty, TimeSpan.Zero, false), new(after, delete, lease));

    /// <summary>Whether the pool's own state (not its leases) is unchanged.</summary>
    internal static bool Same(RemediationPoolRow a, RemediationPoolRow b) =>
        a.LastToken == b.LastToken && a.LastChangeMs == b.LastChangeMs && a.BreakerAtMs == b.BreakerAtMs && a.BreakerReason == b.BreakerReason
        && a.PausedBy == b.PausedBy && a.PausedReason == b.PausedReason && a.PausedAtMs == b.PausedAtMs
        && a.Candidates.SequenceEqual(b.Candidates) && a.Holds.SequenceEqual(b.Holds);

    internal static string Format(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    internal static string Human(TimeSpan t) => t.TotalMinutes >= 1 && t.Seconds == 0 ? $"{t.TotalMinutes:0} min" : $"{t.TotalSeconds:0} s";
}

/// <summary>The kinds of <see cref="RemediationHoldRow"/>.</summary>
public static class RemediationHolds
{
    public const string Paused = "paused";
    public const string Cancelled = "cancelled";

    /// <summary>A hold on the node itself, as its node-agent reports it (the check remediation.hold): never stored here, shown only.</summary>
    public const string Node = "held";

    /// <summary>The node-agent's check that reports a hold on its node (NodeAgent's LadderService.HoldCheck).</summary>
    public const string NodeCheck = Common.Contracts.ContractNames.RemediationHoldCheck;
}
