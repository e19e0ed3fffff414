using System.Globalization;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>
/// Per-unit rate limit: at most Burst entries per unit per Interval; the rest are dropped and counted (never silently:
/// the shipper logs one line per interval with what it dropped). Pure: time comes in.
/// </summary>
public sealed class RateLimiter(RateLimitOptions o)
{
    private readonly Dictionary<string, (DateTimeOffset Start, int Count)> _windows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _dropped = new(StringComparer.Ordinal);

    public bool Allow(string key, DateTimeOffset now)
    {
        if (o.Burst <= 0)
        {
            return true;
        }

        if (!_windows.TryGetValue(key, out var w) || now - w.Start >= o.Interval)
        {
            w = (now, 0);
        }

        if (w.Count >= o.Burst)
        {
            _dropped[key] = _dropped.GetValueOrDefault(key) + 1;
            _windows[key] = w;
            return false;
        }

        _windows[key] = (w.Start, w.Count + 1);
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
