using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Reports;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Every bound of a report, hit exactly (accepted) and passed by one (refused, the field named); names that only
/// look right (a trailing line break) are refused too.
/// </summary>
public sealed class ReportValidatorTests
{
    private static ReportRequest Report() => new() { Node = "tools-k8s-worker-3", Agent = AgentKind.Node, AgentVersion = "1.0.0" };

    private static ReportRequest WithChecks(int count)
    {
        var r = Report();
        for (var i = 0; i < count; i++)
        {
            r.Checks.Add(new CheckResult { Name = $"check-{i}", State = CheckState.Ok });
        }

        return r;
    }

    private static ReportRequest WithFindings(int count)
    {
        var r = Report();
        for (var i = 0; i < count; i++)
        {
            r.Findings.Add(new Finding { Kind = "missing-rule", Subject = $"s{i}", Severity = Severity.Warning });
        }

        return r;
    }

    private static ReportRequest WithEvents(int count)
    {
        var r = Report();
        for (var i = 0; i < count; i++)
        {
            r.Events.Add(new AgentEvent { Kind = "remediation" });
        }

        return r;
    }

    [Fact]
    public void Validate_ChecksFindingsAndEvents_AtTheirBound_Pass_AndOneMore_IsNamed()
    {
        Assert.Null(ReportValidator.Validate(WithChecks(ReportLimits.MaxChecks)));
        Assert.Equal("checks: 501 checks, at most 500 allowed", ReportValidator.Validate(WithChecks(ReportLimits.MaxChecks + 1)));
        Assert.Null(ReportValidator.Validate(WithFindings(ReportLimits.MaxFindings)));
        Assert.Equal("findings: 5001 findings, at most 5000 allowed", ReportValidator.Validate(WithFindings(ReportLimits.MaxFindings + 1)));
        Assert.Null(ReportValidator.Validate(WithEvents(ReportLimits.MaxEvents)));
        Assert.Equal("events: 1001 events, at most 1000 allowed", ReportValidator.Validate(WithEvents(ReportLimits.MaxEvents + 1)));
    }

    [Fact]
    public void Validate_NodeNameOf253Characters_Passes_And254_IsNamed()
    {
        var r = Report();
        r.Node = new string('a', 253);
        Assert.Null(ReportValidator.Validate(r));
        r.Node = new string('a', 254);
        Assert.StartsWith("node: \"aaaa", ReportValidator.Validate(r), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Worker-1")]
    [InlineData("-worker")]
    [InlineData("worker-")]
    [InlineData("worker 1")]
    [InlineData("")]
    [InlineData("worker-1\n")]
    public void Validate_ANodeThatIsNoHostName_IsNamed(string node)
    {
        var r = Report();
        r.Node = node;
        Assert.StartsWith("node: ", ReportValidator.Validate(r), StringComparison.Ordinal);
        Assert.False(ReportValidator.IsValidNodeName(node));
    }

    [Fact]
    public void Validate_AgentVersionOf64Characters_Passes_And65_IsNamed()
    {
        var r = Report();
        r.AgentVersion = new string('1', ReportLimits.MaxAgentVersion);
        Assert.Null(ReportValidator.Validate(r));
        r.AgentVersion += "1";
        Assert.Equal("agent_version: longer than 64 characters", ReportValidator.Validate(r));
    }

    [Fact]
    public void Validate_AnUnspecifiedOrUnknownAgentKind_IsNamed()
    {
        var r = Report();
        r.Agent = AgentKind.Unspecified;
        Assert.Equal("agent: Unspecified is not a known agent kind", ReportValidator.Validate(r));
        r.Agent = (AgentKind)7;
        Assert.Equal("agent: 7 is not a known agent kind", ReportValidator.Validate(r));
    }

    [Fact]
    public void Validate_CheckNameOf128Characters_Passes_129_IsNamed_AndTheSameNameTwice_IsNamed()
    {
        var r = WithChecks(1);
        r.Checks[0].Name = new string('c', ReportLimits.MaxCheckName);
        Assert.Null(ReportValidator.Validate(r));
        r.Checks[0].Name += "c";
        Assert.StartsWith("checks[0].name: \"cccc", ReportValidator.Validate(r), StringComparison.Ordinal);

        var twice = WithChecks(2);
        twice.Checks[1].Name = twice.Checks[0].Name;
        Assert.Equal("checks[1].name: \"check-0\" appears twice", ReportValidator.Validate(twice));
    }

    [Fact]
    public void Validate_NamesAndKindsEndingInALineBreak_AreRefused()
    {
        var check = WithChecks(1);
        check.Checks[0].Name = "kubelet.unit\n";
        Assert.StartsWith("checks[0].name: ", ReportValidator.Validate(check), StringComparison.Ordinal);

        var finding = WithFindings(1);
        finding.Findings[0].Kind = "missing-rule\n";
        Assert.StartsWith("findings[0].kind: ", ReportValidator.Validate(finding), StringComparison.Ordinal);

        var findingCheck = WithFindings(1);
        findingCheck.Findings[0].Check = "kube-proxy.nat\n";
        Assert.StartsWith("findings[0].check: ", ReportValidator.Validate(findingCheck), StringComparison.Ordinal);

        var evt = WithEvents(1);
        evt.Events[0].Kind = "remediation\n";
        Assert.StartsWith("events[0].kind: ", ReportValidator.Validate(evt), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_FindingKindOf64Characters_Passes_And65_IsNamed()
    {
        var r = WithFindings(1);
        r.Findings[0].Kind = new string('k', ReportLimits.MaxKind);
        Assert.Null(ReportValidator.Validate(r));
        r.Findings[0].Kind += "k";
        Assert.StartsWith("findings[0].kind: ", ReportValidator.Validate(r), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_SubjectOf1And512Characters_Passes_0And513_AreNamed()
    {
        var r = WithFindings(1);
        r.Findings[0].Subject = "s";
        Assert.Null(ReportValidator.Validate(r));
        r.Findings[0].Subject = new string('s', ReportLimits.MaxSubject);
        Assert.Null(ReportValidator.Validate(r));
        r.Findings[0].Subject += "s";
        Assert.Equal("findings[0].subject: must be 1 to 512 characters", ReportValidator.Validate(r));
        r.Findings[0].Subject = string.Empty;
        Assert.Equal("findings[0].subject: must be 1 to 512 characters", ReportValidator.Validate(r));
    }

    [Fact]
    public void Validate_MessageOf4096Characters_Passes_And4097_IsNamed()
    {
        var r = WithEvents(1);
        r.Events[0].Message = new string('m', ReportLimits.MaxMessage);
        Assert.Null(ReportValidator.Validate(r));
        r.Events[0].Message += "m";
        Assert.Equal("events[0].message: 4097 characters, at most 4096 allowed", ReportValidator.Validate(r));
    }

    [Fact]
    public void Validate_DetailsAtTheirBounds_Pass_AndOneMore_IsNamed()
    {
        var r = WithChecks(1);
        for (var i = 0; i < ReportLimits.MaxDetails; i++)
        {
            r.Checks[0].Details[$"k{i}"] = "v";
        }

        r.Checks[0].Details["k0"] = new string('v', ReportLimits.MaxDetailValue);
        r.Checks[0].Details[new string('k', ReportLimits.MaxDetailKey)] = "v";
        r.Checks[0].Details.Remove("k1");
        Assert.Null(ReportValidator.Validate(r));

        r.Checks[0].Details["k1"] = "v";
        Assert.Equal("checks[0].details: 33 entries, at most 32 allowed", ReportValidator.Validate(r));
        r.Checks[0].Details.Remove("k1");

        r.Checks[0].Details["k0"] += "v";
        Assert.StartsWith("checks[0].details[\"k0\"]: ", ReportValidator.Validate(r), StringComparison.Ordinal);
        r.Checks[0].Details["k0"] = "v";

        r.Checks[0].Details.Remove(new string('k', ReportLimits.MaxDetailKey));
        r.Checks[0].Details[new string('k', ReportLimits.MaxDetailKey + 1)] = "v";
        Assert.StartsWith("checks[0].details[\"kkkk", ReportValidator.Validate(r), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ValuesOf32Entries_Pass_And33_AreNamed()
    {
        var r = WithChecks(1);
        for (var i = 0; i < ReportLimits.MaxDetails; i++)
        {
            r.Checks[0].Values[$"v{i}"] = i;
        }

        Assert.Null(ReportValidator.Validate(r));
        r.Checks[0].Values["one-more"] = 1;
        Assert.Equal("checks[0].values: more than 32 entries", ReportValidator.Validate(r));
    }

    [Fact]
    public void Validate_TheFirstProblem_IsTheOneNamed()
    {
        var r = WithChecks(2);
        r.Checks[0].State = CheckState.Unspecified;
        r.Checks[1].Name = "bad name";
        Assert.Equal("checks[0].state: Unspecified is not a check state", ReportValidator.Validate(r));
    }
}
