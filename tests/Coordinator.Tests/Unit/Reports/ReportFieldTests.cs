using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>Every field an agent sends is checked before anything is stored; only the builder opens a command stream.</summary>
public sealed partial class ReportFieldTests
{
    private const string Node = "tools-k8s-worker-3";

    private static ReportRequest Report()
    {
        var r = new ReportRequest { Node = Node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kube-proxy.nat", State = CheckState.Warning, Message = "1 rule missing", Values = { ["missing"] = 1 } });
        r.Findings.Add(new Finding { Kind = "missing-rule", Subject = "default/kubernetes:https", Severity = Severity.Warning, Check = "kube-proxy.nat" });
        r.Events.Add(new AgentEvent { Kind = "remediation", Message = "restarted kube-proxy" });
        return r;
    }

    public static TheoryData<string, string> Bad() => new()
    {
        { "severity-unspecified", "findings[0].severity: Unspecified is not a severity" },
        { "severity-undefined", "findings[0].severity: 9 is not a severity" },
        { "check-not-a-name", "findings[0].check: \" kube proxy\" is not a check name" },
        { "value-nan", "checks[0].values[\"missing\"]: NaN is not a finite number" },
        { "value-infinite", "checks[0].values[\"missing\"]: Infinity is not a finite number" },
        { "value-empty-key", "checks[0].values[\"\"]: keys must be 1 to 64 characters" },
        { "value-long-key", "checks[0].values[\"" },
        { "event-kind", "events[0].kind: \"Remediation!\" is not an event kind" },
        { "event-details", "events[0].details[\"\"]: keys must be 1 to 64 characters" },
    };

    private static ReportRequest Broken(string how)
    {
        var r = Report();
        switch (how)
        {
            case "severity-unspecified": r.Findings[0].Severity = Severity.Unspecified; break;
            case "severity-undefined": r.Findings[0].Severity = (Severity)9; break;
            case "check-not-a-name": r.Findings[0].Check = " kube proxy"; break;
            case "value-nan": r.Checks[0].Values["missing"] = double.NaN; break;
            case "value-infinite": r.Checks[0].Values["missing"] = double.PositiveInfinity; break;
            case "value-empty-key": r.Checks[0].Values[string.Empty] = 1; break;
            case "value-long-key": r.Checks[0].Values[new string('k', 65)] = 1; break;
            case "event-kind": r.Events[0].Kind = "Remediation!"; break;
            case "event-details": r.Events[0].Details[string.Empty] = "x"; break;
            default: throw new ArgumentOutOfRangeException(nameof(how));
        }

        return r;
    }

    [Fact]
    public void A_well_formed_report_passes() => Assert.Null(ReportValidator.Validate(Report()));

    [Theory]
    [MemberData(nameof(Bad))]
    public void A_bad_field_is_named(string how, string expected)
    {
        var problem = ReportValidator.Validate(Broken(how));
        Assert.NotNull(problem);
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }
}
