using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Tests;

public sealed class ReportFitterTests
{
    [Theory]
    [InlineData(10, 10)]
    [InlineData(11, 10)]
    [InlineData(10_000, 4096)]
    [InlineData(1_000_000, 4096)]
    [InlineData(50, 5)]
    public void Cut_NeverExceedsTheLimit_AndSaysHowMuchWasCut(int length, int max)
    {
        var s = new string('u', length);
        var cut = ReportLimits.Cut(s, max);
        Assert.True(cut.Length <= max, $"{cut.Length} > {max}");
        if (length <= max)
        {
            Assert.Equal(s, cut);
        }
        else if (max >= 20)
        {
            var kept = cut.IndexOf('…', StringComparison.Ordinal);
            Assert.EndsWith($"…[cut {length - kept} chars]", cut, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Cut_DoesNotSplitASurrogatePair()
    {
        var s = string.Concat(Enumerable.Repeat("😀", 100)); // 200 UTF-16 units
        var cut = ReportLimits.Cut(s, 51);
        var head = cut[..cut.IndexOf('…', StringComparison.Ordinal)];
        Assert.False(char.IsHighSurrogate(head[^1]));
    }

    [Fact]
    public void TenThousandCharacterUser_IsCutWithAMarker_AndTheReportValidates()
    {
        var r = new ReportRequest { Node = "n1.example", Agent = AgentKind.Node };
        r.Findings.Add(new Finding { Kind = "wrong-user", Subject = "tool-a/pod/c", Message = "runs as " + new string('u', 10_000) });
        Assert.Equal(0, ReportFitter.Fit(r));
        Assert.True(r.Findings[0].Message.Length <= ReportLimits.MaxMessage);
        Assert.Contains("…[cut ", r.Findings[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FindingsBeyondTheCap_AreReplacedByOneFindingThatCountsThem()
    {
        var r = new ReportRequest { Node = "n1.example", Agent = AgentKind.Node };
        for (var i = 0; i < ReportLimits.MaxFindings + 1234; i++)
        {
            r.Findings.Add(new Finding { Kind = i % 2 == 0 ? "missing-rule" : "stale-rule", Subject = $"s{i}", Check = "kube-proxy.nat" });
        }

        var dropped = ReportFitter.Fit(r);
        Assert.Equal(1235, dropped);
        Assert.Equal(ReportLimits.MaxFindings, r.Findings.Count);
        var marker = r.Findings[^1];
        Assert.Equal(ReportFitter.TruncatedKind, marker.Kind);
        Assert.Contains("1235 more findings were not sent", marker.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WhateverGoesIn_WhatComesOutPassesTheCoordinatorsLimits()
    {
        var random = new Random(42);
        string Junk(int max)
        {
            var n = random.Next(0, max);
            return new string(Enumerable.Range(0, n).Select(_ => (char)random.Next(0, 0x3000)).ToArray());
        }

        for (var round = 0; round < 50; round++)
        {
            var r = new ReportRequest { Node = "n1.example", Agent = AgentKind.Node, AgentVersion = Junk(200) };
            for (var i = 0; i < random.Next(0, 600); i++)
            {
                var c = new CheckResult { Name = Junk(200), State = (CheckState)random.Next(0, 7), Message = Junk(9000) };
                for (var d = 0; d < random.Next(0, 40); d++)
                {
                    c.Details[Junk(100)] = Junk(2000);
                    c.Values[Junk(10) + d] = d;
                    c.Values[Junk(100)] = random.Next(0, 4) switch { 0 => double.NaN, 1 => double.PositiveInfinity, _ => random.NextDouble() };
                }

                r.Checks.Add(c);
            }

            for (var i = 0; i < random.Next(0, 50); i++)
            {
                r.Findings.Add(new Finding { Kind = Junk(100), Subject = Junk(1000), Message = Junk(9000), Severity = (Severity)random.Next(0, 6), Check = Junk(300) });
                r.Events.Add(new AgentEvent { Kind = Junk(100), Message = Junk(9000) });
            }

            ReportFitter.Fit(r);
            Assert.Null(Problem(r));
        }
    }

    // The coordinator's rules, restated from the limits (the coordinator's own validator is tested against them there).
    private static string? Problem(ReportRequest r)
    {
        if (r.AgentVersion.Length > ReportLimits.MaxAgentVersion || r.Checks.Count > ReportLimits.MaxChecks)
        {
            return "version or checks";
        }

        if (r.Checks.Select(c => c.Name).Distinct(StringComparer.Ordinal).Count() != r.Checks.Count)
        {
            return "duplicate check";
        }

        foreach (var c in r.Checks)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(c.Name, "^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$") || c.State == CheckState.Unspecified
                || !Enum.IsDefined(c.State) || c.Message.Length > ReportLimits.MaxMessage || c.Details.Count > ReportLimits.MaxDetails
                || c.Values.Count > ReportLimits.MaxDetails || c.Details.Any(d => d.Key.Length is 0 or > ReportLimits.MaxDetailKey || d.Value.Length > ReportLimits.MaxDetailValue)
                || c.Values.Any(v => v.Key.Length is 0 or > ReportLimits.MaxDetailKey || !double.IsFinite(v.Value)))
            {
                return $"check {c.Name}";
            }
        }

        foreach (var f in r.Findings)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(f.Kind, "^[a-z0-9][a-z0-9-]{0,63}$") || f.Subject.Length is 0 or > ReportLimits.MaxSubject
                || f.Message.Length > ReportLimits.MaxMessage || f.Severity == Severity.Unspecified || !Enum.IsDefined(f.Severity)
                || (f.Check.Length > 0 && !System.Text.RegularExpressions.Regex.IsMatch(f.Check, "^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$")))
            {
                return $"finding {f.Kind}";
            }
        }

        return r.Events.Any(e => !System.Text.RegularExpressions.Regex.IsMatch(e.Kind, "^[a-z0-9][a-z0-9-]{0,63}$") || e.Message.Length > ReportLimits.MaxMessage)
            ? "event" : null;
    }
}
