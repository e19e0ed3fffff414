namespace Toolforge.Agents.LogShipper.Delivery.Relp;

/// <summary>
/// How many RELP frames may be outstanding, sized from the acknowledgement rate: twice what the receiver acknowledges
/// in the longer of one unloaded round trip (the shortest seen lately) and 10 ms, between the configured
/// Shipper:RelpWindow and Shipper:RelpWindowMax. The round trip covers a receiver far away (the window must hold what
/// is on the way); the 10 ms keep each refill (half a window, one write) big enough that a fast local receiver is not
/// paced by a ping-pong of small batches. A receiver that cannot keep up acknowledges slowly and keeps the window
/// small, so little is held in memory or sent again after a reconnect. The clock is injected so the sizing is tested
/// without waiting.
/// </summary>
public sealed class RelpWindow
{
    private static readonly TimeSpan RatePeriod = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RttMemory = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RefillPeriod = TimeSpan.FromMilliseconds(10);

    private readonly int _min;
    private readonly int _max;
    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private long _periodStart;
    private long _acks;
    private double _rate; // acknowledgements per second, smoothed
    private TimeSpan? _minRtt;
    private long _minRttAt;

    public RelpWindow(int min, int max, TimeProvider time)
    {
        (_min, _max, _time) = (min, max, time);
        Size = min;
        _periodStart = time.GetTimestamp();
    }

    public int Size { get; private set; }

    /// <summary>Acknowledgements arrived (a burst of <paramref name="count"/>).</summary>
    public void Acked(int count)
    {
        lock (_lock)
        {
            _acks += count;
            var elapsed = _time.GetElapsedTime(_periodStart);
            if (elapsed < RatePeriod)
            {
                return;
            }

            var rate = _acks / elapsed.TotalSeconds;
            _rate = _rate == 0 ? rate : (0.7 * _rate) + (0.3 * rate);
            _acks = 0;
            _periodStart = _time.GetTimestamp();
            Resize();
        }
    }

    /// <summary>One frame's time from its write to its acknowledgement.</summary>
    public void RoundTrip(TimeSpan rtt)
    {
        lock (_lock)
        {
            // The shortest lately: an old minimum is forgotten, so a path that got slower is measured again.
            if (_minRtt is not { } m || rtt <= m || _time.GetElapsedTime(_minRttAt) > RttMemory)
            {
                _minRtt = rtt;
                _minRttAt = _time.GetTimestamp();
            }
        }
    }

    private void Resize()
    {
        var period = _minRtt is { } rtt && rtt > RefillPeriod ? rtt : RefillPeriod;
        Size = (int)Math.Clamp(Math.Ceiling(2 * _rate * period.TotalSeconds), _min, _max);
    }
}
