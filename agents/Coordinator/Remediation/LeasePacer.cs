using System.Globalization;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>What a node-agent asks of its pool's lease.</summary>
/// <param name="Token">0: take; else the token it holds (renew, or give back with <paramref name="Release"/>).</param>
public sealed record LeaseAsk(string Node, string Incident, string Step, long Token, bool Release);

/// <summary>The answer: granted (with the token and how long it holds), or refused (why, when to ask again, whether the token is lost).</summary>
public sealed record LeaseAnswer(bool Granted, long Token, TimeSpan ValidFor, string Refusal, TimeSpan RetryAfter, bool Lost)
{
    public static LeaseAnswer Refused(string why, TimeSpan retryAfter = default, bool lost = false) => new(false, 0, TimeSpan.Zero, why, retryAfter, lost);
}

/// <summary>
/// The pacing of one pool, decided on what the store holds (<see cref="RemediationPoolRow"/>), at <c>now</c>; a pure
/// function, so every rule is tested without a database or a clock:
/// <list type="bullet">
/// <item>an expired lease is gone (its node died or went silent): it frees its place, and it counts as the pool's
/// last change at its expiry;</item>
/// <item>take: at most <see cref="RemediationPoolOptions.MaxConcurrent"/> live leases; none sooner than
/// <see cref="RemediationPoolOptions.MinGap"/> after the pool's last change (a lease taken, given back or expired);
/// only inside a maintenance window when the pool has windows; a new fencing token, one more than the pool's last;
/// asked again for the same incident (an answer lost on the way), the node's live lease is renewed instead;</item>
/// <item>renew: only with the token and incident of the node's live lease, in or out of a window; any other token is
/// lost (expired, or taken over after it expired) and its holder must not act;</item>
/// <item>release: with the token of the node's live lease; a release of a lease not held changes nothing.</item>
/// </list>
/// </summary>
public static class LeasePacer
{
    public static (LeaseAnswer Answer, RemediationPoolWrite? Write) Decide(
        RemediationPoolOptions pool, IReadOnlyList<MaintenanceWindow> windows, RemediationPoolRow row, LeaseAsk ask, DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var ttlMs = (long)pool.LeaseTtl.TotalMilliseconds;
        var expired = row.Leases.Where(l => l.ExpiresMs <= nowMs).ToList();
        var live = row.Leases.Where(l => l.ExpiresMs > nowMs).ToList();
        var lastChange = expired.Aggregate(row.LastChangeMs, (m, l) => Math.Max(m, l.ExpiresMs));
        var delete = expired.Select(l => l.Node).ToList();
        var mine = live.FirstOrDefault(l => l.Node == ask.Node);
        RemediationPoolWrite? Cleanup() => delete.Count == 0 ? null : new(row.LastToken, lastChange, delete, null);

        if (ask.Release)
        {
            if (mine is null || mine.Token != ask.Token)
            {
                return (LeaseAnswer.Refused($"no lease with token {ask.Token} is held by {ask.Node} (it expired, or was given back already)", lost: true), Cleanup());
            }

            delete.Add(mine.Node);
            return (new LeaseAnswer(false, mine.Token, TimeSpan.Zero, string.Empty, TimeSpan.Zero, false), new(row.LastToken, nowMs, delete, null));
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
                return (LeaseAnswer.Refused(why + ": stop acting on it and take the lease again", lost: true), Cleanup());
            }

            return Grant(mine with { Step = ask.Step, RenewedMs = nowMs, ExpiresMs = nowMs + ttlMs }, row.LastToken, lastChange, delete, pool);
        }

        if (mine is not null && mine.Incident == ask.Incident)
        {
            return Grant(mine with { Step = ask.Step, RenewedMs = nowMs, ExpiresMs = nowMs + ttlMs }, row.LastToken, lastChange, delete, pool); // the answer was lost
        }

        if (mine is not null)
        {
            // The node's earlier incident never gave its lease back (the agent lost its record): that lease ends here
            // and its place is the new one's; it is not someone else's, so neither the limit nor the gap holds it up.
            delete.Add(mine.Node);
            live.Remove(mine);
        }
        else
        {
            if (windows.Count > 0 && !windows.Any(w => w.Contains(now)))
            {
                var next = windows.Min(w => w.NextStart(now));
                return (LeaseAnswer.Refused($"outside the pool's maintenance windows ({string.Join("; ", windows.Select(w => w.Text))}); the next opens {Format(next.ToUnixTimeMilliseconds())}", next - now), Cleanup());
            }

            if (live.Count >= pool.MaxConcurrent)
            {
                var first = live.MinBy(l => l.ExpiresMs)!;
                var holders = string.Join(", ", live.Select(l => $"{l.Node} ({l.Step} since {Format(l.AcquiredMs)})"));
                return (LeaseAnswer.Refused($"{live.Count} of {pool.MaxConcurrent} node(s) of the pool in remediation: {holders}", TimeSpan.FromMilliseconds(Math.Max(1000, first.ExpiresMs - nowMs))), Cleanup());
            }

            var gapEnds = lastChange + (long)pool.MinGap.TotalMilliseconds;
            if (lastChange > 0 && nowMs < gapEnds)
            {
                return (LeaseAnswer.Refused($"too soon: the pool's last lease was taken or ended {Format(lastChange)}, and {Human(pool.MinGap)} must pass (until {Format(gapEnds)})", TimeSpan.FromMilliseconds(gapEnds - nowMs)), Cleanup());
            }
        }

        var token = row.LastToken + 1;
        return Grant(new RemediationLeaseRow(ask.Node, ask.Incident, ask.Step, token, nowMs, nowMs, nowMs + ttlMs), token, nowMs, delete, pool);
    }

    private static (LeaseAnswer, RemediationPoolWrite) Grant(RemediationLeaseRow lease, long lastToken, long lastChange, List<string> delete, RemediationPoolOptions pool) =>
        (new LeaseAnswer(true, lease.Token, pool.LeaseTtl, string.Empty, TimeSpan.Zero, false), new(lastToken, lastChange, delete, lease));

    private static string Format(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Human(TimeSpan t) => t.TotalMinutes >= 1 && t.Seconds == 0 ? $"{t.TotalMinutes:0} min" : $"{t.TotalSeconds:0} s";
}
