using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.Reports;

/// <summary>
/// Times in a report come from the agent's clock: each is clamped into [now − retention, now + 5 min], so a wrong or
/// hostile clock can neither keep rows past retention nor sort itself ahead of everything else.
/// </summary>
internal static class ReportClock
{
    public static void Clamp(ReportRequest r, DateTimeOffset now, TimeSpan retention)
    {
        var low = now - retention;
        var high = now + ReportLimits.MaxClockSkew;
        r.SentAt = Clamp(r.SentAt, low, high);
        foreach (var c in r.Checks)
        {
            c.ObservedAt = Clamp(c.ObservedAt, low, high);
            c.Since = Clamp(c.Since, low, high);
            if (c.Latency is { } l && (l.Seconds < 0 || l.Nanos < 0 || l.Seconds > 86_400))
            {
                c.Latency = l.Seconds < 0 || l.Nanos < 0 ? new Duration() : Duration.FromTimeSpan(TimeSpan.FromDays(1));
            }
        }

        foreach (var e in r.Events)
        {
            e.At = Clamp(e.At, low, high) ?? Timestamp.FromDateTimeOffset(now);
        }

        r.ImagesAt = Clamp(r.ImagesAt, low, high);
        r.PodsAt = Clamp(r.PodsAt, low, high);
    }

    private static Timestamp? Clamp(Timestamp? t, DateTimeOffset low, DateTimeOffset high)
    {
        if (t is null)
        {
            return null;
        }

        // Out-of-range protobuf timestamps (seconds beyond year 9999) cannot be converted: treat them as far future.
        DateTimeOffset at;
        try
        {
            at = t.ToDateTimeOffset();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentOutOfRangeException)
        {
            at = t.Seconds < 0 ? DateTimeOffset.MinValue : DateTimeOffset.MaxValue;
        }

        return at < low ? Timestamp.FromDateTimeOffset(low) : at > high ? Timestamp.FromDateTimeOffset(high) : t;
    }
}
