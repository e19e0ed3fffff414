namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>
/// Per-unit rate limit: at most Burst entries per unit per Interval; the rest are dropped and counted (never silently:
/// the shipper logs one line per interval with what it dropped). Pure: time comes in. A unit's name is made a string
/// once, when it is first seen.
/// </summary>
public sealed class RateLimiter(RateLimitOptions o)
{
    private readonly Dictionary<string, (DateTimeOffset Start, int Count)> _windows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _dropped = new(StringComparer.Ordinal);

    public bool Allow(ReadOnlySpan<char> key, DateTimeOffset now)
    {
        if (o.Burst <= 0)
        {
            return true;
        }

        var windows = _windows.GetAlternateLookup<ReadOnlySpan<char>>();
        if (!windows.TryGetValue(key, out var w) || now - w.Start >= o.Interval)
        {
            w = (now, 0);
        }

        if (w.Count >= o.Burst)
        {
            var dropped = _dropped.GetAlternateLookup<ReadOnlySpan<char>>();
            dropped[key] = (dropped.TryGetValue(key, out var d) ? d : 0) + 1;
            windows[key] = w;
            return false;
        }

        windows[key] = (w.Start, w.Count + 1);
        return true;
    }

    /// <summary>Dropped entries per unit since the last call.</summary>
    public IReadOnlyDictionary<string, long> TakeDropped()
    {
        var copy = new Dictionary<string, long>(_dropped, StringComparer.Ordinal);
        _dropped.Clear();
        return copy;
    }
}
