using Toolforge.Agents.Common.Resilience;

namespace Toolforge.Agents.Common.Tests;

public sealed class BackoffTests
{
    [Fact]
    public void Ceiling_DoublesFromInitial_UpToMax()
    {
        var b = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.Zero, b.Ceiling(0));
        Assert.Equal(TimeSpan.FromSeconds(1), b.Ceiling(1));
        Assert.Equal(TimeSpan.FromSeconds(2), b.Ceiling(2));
        Assert.Equal(TimeSpan.FromSeconds(16), b.Ceiling(5));
        Assert.Equal(TimeSpan.FromSeconds(30), b.Ceiling(6));
        Assert.Equal(TimeSpan.FromSeconds(30), b.Ceiling(int.MaxValue));
    }

    [Fact]
    public void Next_IsFullJitter_WithinTheCeiling_AndSpreadsOut()
    {
        var b = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), new Random(7));
        for (var i = 0; i < 10; i++)
        {
            b.Next();
        }

        var waits = Enumerable.Range(0, 1000).Select(_ => b.Next()).ToList();
        Assert.All(waits, w => Assert.InRange(w, TimeSpan.Zero, TimeSpan.FromSeconds(30)));
        // Full jitter: spread over the whole range, not bunched at the cap (a fleet must not retry in step).
        Assert.InRange(waits.Average(w => w.TotalSeconds), 12, 18);
        Assert.True(waits.Min() < TimeSpan.FromSeconds(3) && waits.Max() > TimeSpan.FromSeconds(27));
    }

    [Fact]
    public void Reset_StartsOverFromInitial()
    {
        var b = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), new Random(1));
        for (var i = 0; i < 20; i++)
        {
            b.Next();
        }

        b.Reset();
        Assert.Equal(0, b.Failures);
        Assert.InRange(b.Next(), TimeSpan.Zero, TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void BadBounds_AreRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Backoff(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1)));
}
