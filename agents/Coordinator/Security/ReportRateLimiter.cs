using System.Collections.Concurrent;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// A token bucket per (identity, agent kind) on Report: <c>ReportRate</c> tokens a second up to <c>ReportBurst</c>.
/// One node flooding reports is refused (RESOURCE_EXHAUSTED) without slowing anyone else. Buckets that have been full
/// for a while are forgotten, so memory follows the number of active agents.
/// </summary>
public sealed class ReportRateLimiter(PolicyProvider policy, TimeProvider time)
{
    private readonly ConcurrentDictionary<(string Identity, AgentKind Kind), Bucket> _buckets = new();
    private long _nextPrune;

    private sealed class Bucket(double tokens, long at)
    {
        public double Tokens = tokens;
        public long At = at;
    }

    /// <summary>Takes a token; when none is left, <paramref name="retryAfter"/> is how long until one is.</summary>
    public bool TryTake(string identity, AgentKind kind, out TimeSpan retryAfter)
    {
        var p = policy.Current;
        var now = time.GetTimestamp();
        var bucket = _buckets.GetOrAdd((identity, kind), _ => new Bucket(p.ReportBurst, now));
        bool taken;
        retryAfter = TimeSpan.Zero;
        lock (bucket)
        {
            var elapsed = time.GetElapsedTime(bucket.At, now).TotalSeconds;
            bucket.Tokens = Math.Min(p.ReportBurst, bucket.Tokens + (elapsed * p.ReportRate));
            bucket.At = now;
            taken = bucket.Tokens >= 1;
            if (taken)
            {
                bucket.Tokens -= 1;
            }
            else
            {
                retryAfter = TimeSpan.FromSeconds((1 - bucket.Tokens) / Math.Max(p.ReportRate, 0.001));
            }
        }

        PruneNowAndThen(now, p);
        return taken;
    }

    private void PruneNowAndThen(long now, SecurityPolicy p)
    {
        var next = Interlocked.Read(ref _nextPrune);
        if (now < next || Interlocked.CompareExchange(ref _nextPrune, now + (time.TimestampFrequency * 60), next) != next)
        {
            return;
        }

        // A bucket untouched for longer than it takes to fill up again is the same as a new one.
        var refill = TimeSpan.FromSeconds(p.ReportBurst / Math.Max(p.ReportRate, 0.001));
        foreach (var (key, bucket) in _buckets)
        {
            if (time.GetElapsedTime(Volatile.Read(ref bucket.At), now) > refill)
            {
                _buckets.TryRemove(key, out _);
            }
        }
    }
}
