using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.LogShipper.Delivery.Relp;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>The RELP window is sized from the acknowledgement rate and the unloaded round trip (a fake clock drives it).</summary>
public sealed class RelpWindowTests
{
    // acknowledgements arriving at `rate` per second for `seconds`, in bursts every 10 ms, with one round-trip sample per burst
    private static void Feed(RelpWindow w, FakeTimeProvider clock, double rate, TimeSpan rtt, double seconds)
    {
        var burst = (int)(rate / 100);
        for (var t = 0; t < seconds * 100; t++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            w.RoundTrip(rtt);
            w.Acked(burst);
        }
    }

    [Fact]
    public void AFastReceiverFarAway_GrowsTheWindow_ToTwiceWhatOneRoundTripCarries()
    {
        var clock = new FakeTimeProvider();
        var w = new RelpWindow(128, 4096, clock);
        Assert.Equal(128, w.Size);
        Feed(w, clock, rate: 50_000, rtt: TimeSpan.FromMilliseconds(20), seconds: 2);
        Assert.InRange(w.Size, 1900, 2100); // 2 x 50,000/s x 20 ms = 2,000
    }

    [Fact]
    public void TheWindow_StaysBetweenItsBounds()
    {
        var clock = new FakeTimeProvider();
        var w = new RelpWindow(128, 1024, clock);
        Feed(w, clock, rate: 200_000, rtt: TimeSpan.FromMilliseconds(50), seconds: 2);
        Assert.Equal(1024, w.Size); // 20,000 wanted, capped

        var slow = new RelpWindow(128, 1024, clock);
        Feed(slow, clock, rate: 1_000, rtt: TimeSpan.FromMilliseconds(1), seconds: 2);
        Assert.Equal(128, slow.Size); // 2 wanted, the configured least
    }

    [Fact]
    public void AFastReceiverNearby_GetsAWindowOfTenMillisecondsOfItsRate_SoARefillIsNoSmallBatch()
    {
        var clock = new FakeTimeProvider();
        var w = new RelpWindow(128, 4096, clock);
        Feed(w, clock, rate: 100_000, rtt: TimeSpan.FromMilliseconds(0.3), seconds: 2);
        Assert.InRange(w.Size, 1900, 2100); // 2 x 100,000/s x 10 ms, not 2 x 100,000/s x 0.3 ms = 60

        var unsampled = new RelpWindow(256, 4096, clock);
        for (var i = 0; i < 100; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(50));
            unsampled.Acked(2_500); // 50,000/s and no round trip measured yet
        }

        Assert.InRange(unsampled.Size, 950, 1050);
    }

    [Fact]
    public void AReceiverThatSlowsDown_ShrinksTheWindow_OnceTheOldShortRoundTripIsForgotten()
    {
        var clock = new FakeTimeProvider();
        var w = new RelpWindow(128, 8192, clock);
        Feed(w, clock, rate: 100_000, rtt: TimeSpan.FromMilliseconds(10), seconds: 2);
        Assert.InRange(w.Size, 1900, 2100);

        // Now it acknowledges 10,000/s; the shortest round trip seen stays 10 ms for a while, then is measured again.
        Feed(w, clock, rate: 10_000, rtt: TimeSpan.FromMilliseconds(12), seconds: 15);
        Assert.InRange(w.Size, 200, 260); // 2 x 10,000/s x 12 ms = 240
    }
}
