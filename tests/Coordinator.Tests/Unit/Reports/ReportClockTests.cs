using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Reports;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>An agent's clock, trusted up to the limits: [now − retention, now + 5 min], every time in a report.</summary>
public sealed class ReportClockTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    private static ReportRequest At(DateTimeOffset at)
    {
        var t = Timestamp.FromDateTimeOffset(at);
        var r = new ReportRequest { SentAt = t };
        r.Checks.Add(new CheckResult { Name = "c", ObservedAt = t, Since = t });
        r.Events.Add(new AgentEvent { Kind = "e", At = t });
        return r;
    }

    private static DateTimeOffset[] Times(ReportRequest r) =>
        [r.SentAt.ToDateTimeOffset(), r.Checks[0].ObservedAt.ToDateTimeOffset(), r.Checks[0].Since.ToDateTimeOffset(), r.Events[0].At.ToDateTimeOffset()];

    [Fact]
    public void Clamp_ASkewOfExactlyFiveMinutesAhead_IsKept_AndOneSecondMore_IsPulledBackToTheLimit()
    {
        var atLimit = At(Now + ReportLimits.MaxClockSkew);
        ReportClock.Clamp(atLimit, Now, Retention);
        Assert.All(Times(atLimit), t => Assert.Equal(Now + TimeSpan.FromMinutes(5), t));

        var past = At(Now + ReportLimits.MaxClockSkew + TimeSpan.FromSeconds(1));
        ReportClock.Clamp(past, Now, Retention);
        Assert.All(Times(past), t => Assert.Equal(Now + TimeSpan.FromMinutes(5), t));
    }

    [Fact]
    public void Clamp_ATimeExactlyRetentionAgo_IsKept_AndOneSecondOlder_IsRaisedToTheLimit()
    {
        var atLimit = At(Now - Retention);
        ReportClock.Clamp(atLimit, Now, Retention);
        Assert.All(Times(atLimit), t => Assert.Equal(Now - Retention, t));

        var older = At(Now - Retention - TimeSpan.FromSeconds(1));
        ReportClock.Clamp(older, Now, Retention);
        Assert.All(Times(older), t => Assert.Equal(Now - Retention, t));
    }

    [Fact]
    public void Clamp_TimestampsNoCalendarHolds_AreTheFarEnds()
    {
        var r = new ReportRequest { SentAt = new Timestamp { Seconds = long.MaxValue } };
        r.Events.Add(new AgentEvent { Kind = "e", At = new Timestamp { Seconds = long.MinValue } });
        ReportClock.Clamp(r, Now, Retention);
        Assert.Equal(Now + TimeSpan.FromMinutes(5), r.SentAt.ToDateTimeOffset());
        Assert.Equal(Now - Retention, r.Events[0].At.ToDateTimeOffset());
    }

    [Fact]
    public void Clamp_AMissingTime_StaysMissing_ButAnEventWithoutOne_HappenedNow()
    {
        var r = new ReportRequest();
        r.Checks.Add(new CheckResult { Name = "c" });
        r.Events.Add(new AgentEvent { Kind = "e" });
        ReportClock.Clamp(r, Now, Retention);
        Assert.Null(r.SentAt);
        Assert.Null(r.Checks[0].ObservedAt);
        Assert.Null(r.Checks[0].Since);
        Assert.Equal(Now, r.Events[0].At.ToDateTimeOffset());
    }

    [Fact]
    public void Clamp_ANegativeLatency_IsZero_MoreThanADay_IsADay_AndADayExactly_IsKept()
    {
        var r = new ReportRequest();
        r.Checks.Add(new CheckResult { Name = "negative", Latency = new Duration { Seconds = -1 } });
        r.Checks.Add(new CheckResult { Name = "long", Latency = new Duration { Seconds = 86_401 } });
        r.Checks.Add(new CheckResult { Name = "day", Latency = new Duration { Seconds = 86_400 } });
        ReportClock.Clamp(r, Now, Retention);
        Assert.Equal(
            [TimeSpan.Zero, TimeSpan.FromDays(1), TimeSpan.FromDays(1)],
            r.Checks.Select(c => c.Latency.ToTimeSpan()));
    }
}
