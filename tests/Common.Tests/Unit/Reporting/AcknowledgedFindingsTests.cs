using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using Prometheus;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// What an agent does with the acknowledgements its report's answer carries: an acknowledged finding leaves
/// toolforge_findings (what the alert rules read) for toolforge_findings_acknowledged, and counts again the moment the
/// acknowledgement ends, the finding gets worse, or it resolves and comes back — also with the coordinator silent.
/// </summary>
public sealed class AcknowledgedFindingsTests
{
    private static async Task<(double Findings, double Acknowledged)> GaugesAsync(string kind)
    {
        using var stream = new MemoryStream();
        await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(stream);
        var text = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        double Value(string name) => text.Split('\n')
            .Where(l => l.StartsWith($"{name}{{kind=\"{kind}\"}} ", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))
            .DefaultIfEmpty(double.NaN).Single();
        return (Value("toolforge_findings"), Value("toolforge_findings_acknowledged"));
    }

    private static Finding F(string kind, string subject, Severity s) => new() { Kind = kind, Subject = subject, Message = "m", Severity = s };

    private static Acknowledgement Ack(string kind, string subject, Severity s, DateTimeOffset until) =>
        new() { Kind = kind, Subject = subject, Severity = s, Until = Timestamp.FromDateTimeOffset(until), By = "admin1.example", Reason = "r" };

    [Fact]
    public async Task An_acknowledged_finding_leaves_the_alerting_gauge_until_it_ends_gets_worse_or_comes_back()
    {
        var kind = "ack-test-" + Guid.NewGuid().ToString("N")[..8]; // the gauges are process-wide
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T12:00:00Z", CultureInfo.InvariantCulture));
        var state = new AgentState(time, new ListLogger<AgentState>());
        state.SetFindings("audit", [F(kind, "a", Severity.Warning), F(kind, "b", Severity.Error)]);
        Assert.Equal((2, 0), await GaugesAsync(kind));

        state.SetAcknowledged([Ack(kind, "a", Severity.Warning, time.GetUtcNow().AddHours(1))]);
        Assert.Equal((1, 1), await GaugesAsync(kind));
        Assert.True(state.IsAcknowledged(F(kind, "a", Severity.Warning)));

        // Worse than acknowledged: it changed, and the acknowledgement ends (the set of findings is the same; only its
        // severity changed); better again, it stays ended.
        state.SetFindings("audit", [F(kind, "a", Severity.Error), F(kind, "b", Severity.Error)]);
        Assert.Equal((2, 0), await GaugesAsync(kind));
        state.SetFindings("audit", [F(kind, "a", Severity.Warning), F(kind, "b", Severity.Error)]);
        Assert.Equal((2, 0), await GaugesAsync(kind));

        // The end comes with no answer from the coordinator: the timer puts it back.
        state.SetAcknowledged([Ack(kind, "a", Severity.Warning, time.GetUtcNow().AddHours(1))]);
        Assert.Equal((1, 1), await GaugesAsync(kind));
        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal((1, 1), await GaugesAsync(kind));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal((2, 0), await GaugesAsync(kind));

        // Resolved and back while the coordinator is silent: a new finding, not acknowledged.
        state.SetAcknowledged([Ack(kind, "b", Severity.Error, time.GetUtcNow().AddHours(1))]);
        Assert.Equal((1, 1), await GaugesAsync(kind));
        state.SetFindings("audit", [F(kind, "a", Severity.Warning)]);
        Assert.Equal((1, 0), await GaugesAsync(kind));
        state.SetFindings("audit", [F(kind, "a", Severity.Warning), F(kind, "b", Severity.Error)]);
        Assert.Equal((2, 0), await GaugesAsync(kind));

        // The coordinator's next answer without it ends it too.
        state.SetAcknowledged([Ack(kind, "a", Severity.Warning, time.GetUtcNow().AddHours(1))]);
        Assert.Equal((1, 1), await GaugesAsync(kind));
        state.SetAcknowledged([]);
        Assert.Equal((2, 0), await GaugesAsync(kind));
    }
}
