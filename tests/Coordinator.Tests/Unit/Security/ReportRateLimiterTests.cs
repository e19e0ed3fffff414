using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Security;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// A token bucket per (identity, agent kind): ReportBurst at once, then ReportRate a second; one caller's flood takes
/// nothing from another. Time is a fake clock moved by the test.
/// </summary>
public sealed class ReportRateLimiterTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));

    private ReportRateLimiter Limiter(double rate, int burst) => new(
        new PolicyProvider(Microsoft.Extensions.Options.Options.Create(new SecurityOptions { ReportRate = rate, ReportBurst = burst }), NullLogger<PolicyProvider>.Instance),
        _time);

    private static int TakeAll(ReportRateLimiter limiter, string identity = "worker-1", AgentKind kind = AgentKind.Node)
    {
        var taken = 0;
        while (limiter.TryTake(identity, kind, out _))
        {
            taken++;
            Assert.True(taken <= 1000, "the bucket never ran dry");
        }

        return taken;
    }

    [Fact]
    public void TryTake_TheBurstIsTakenAtOnce_AndTheNextIsRefused()
    {
        var limiter = Limiter(rate: 5, burst: 20);
        Assert.Equal(20, TakeAll(limiter));
        Assert.False(limiter.TryTake("worker-1", AgentKind.Node, out _));
    }

    [Fact]
    public void TryTake_AnEmptyBucket_RefillsAtTheRate_OneTokenExactlyAfterOneOverRate()
    {
        // Two limiters emptied at the same moment: each is asked once, one tick before and exactly at 2 s.
        var early = Limiter(rate: 0.5, burst: 3);
        var onTime = Limiter(rate: 0.5, burst: 3);
        Assert.Equal((3, 3), (TakeAll(early), TakeAll(onTime)));

        _time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.False(early.TryTake("worker-1", AgentKind.Node, out var hint));
        Assert.Equal(TimeSpan.FromSeconds(0.5), hint); // the retry hint: exactly until the next token
        _time.Advance(TimeSpan.FromSeconds(0.5) - TimeSpan.FromTicks(1));
        Assert.False(early.TryTake("worker-1", AgentKind.Node, out _));
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.True(onTime.TryTake("worker-1", AgentKind.Node, out _));
        Assert.False(onTime.TryTake("worker-1", AgentKind.Node, out _));
    }

    [Fact]
    public void TryTake_ALongSilence_RefillsToTheBurst_NeverBeyond()
    {
        var limiter = Limiter(rate: 5, burst: 20);
        Assert.Equal(20, TakeAll(limiter));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(20, TakeAll(limiter));
    }

    [Fact]
    public void TryTake_OneCallersFlood_LeavesAnotherIdentityAndAnotherAgentKindTheirWholeBurst()
    {
        var limiter = Limiter(rate: 1, burst: 4);
        Assert.Equal(4, TakeAll(limiter, "worker-1", AgentKind.Node));
        Assert.Equal(4, TakeAll(limiter, "worker-2", AgentKind.Node));
        Assert.Equal(4, TakeAll(limiter, "worker-1", AgentKind.LogShipper));
    }

    [Fact]
    public void TryTake_TheMinutelyPrune_KeepsABucketThatHasNotRefilledYet()
    {
        // 4 tokens at 0.01 a second: 400 s to refill. A prune 61 s later must not hand worker-1 a fresh, full bucket.
        var limiter = Limiter(rate: 0.01, burst: 4);
        Assert.Equal(4, TakeAll(limiter, "worker-1"));
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.True(limiter.TryTake("worker-2", AgentKind.Node, out _)); // the first call after a minute prunes
        Assert.False(limiter.TryTake("worker-1", AgentKind.Node, out _)); // 0.61 tokens
    }
}
