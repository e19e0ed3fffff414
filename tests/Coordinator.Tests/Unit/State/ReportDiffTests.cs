using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>The report diff: what a report changes against the agent's last stored state.</summary>
public sealed class ReportDiffTests
{
    private static readonly Timestamp T1 = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 5, 10, 0, 0, TimeSpan.Zero));
    private static readonly Timestamp T2 = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 5, 10, 1, 0, TimeSpan.Zero));

    private static ReportRequest Report(params object[] items)
    {
        var r = new ReportRequest { Node = "n1", Agent = AgentKind.Node, AgentVersion = "1.0.0" };
        foreach (var item in items)
        {
            switch (item)
            {
                case CheckResult c:
                    r.Checks.Add(c);
                    break;
                case Finding f:
                    r.Findings.Add(f);
                    break;
            }
        }

        return r;
    }

    private static CheckResult Check(string name, CheckState state) => new() { Name = name, State = state, Message = state.ToString() };

    private static Finding Finding(string subject) => new() { Kind = "missing-rule", Subject = subject, Message = "rule for " + subject };

    [Fact]
    public void First_report_every_check_is_a_change_and_findings_are_first_seen_now()
    {
        var d = ReportDiff.Compute(null, Report(Check("kubelet", CheckState.Ok), Check("docker", CheckState.Warning), Finding("ns/a")), T1);
        Assert.Equal(["kubelet", "docker"], d.ChangedChecks.Select(c => c.Name));
        Assert.Empty(d.Resolved);
        var f = Assert.Single(d.Stored.Findings);
        Assert.Equal(T1, f.FirstSeen);
        Assert.Equal(T1, f.LastSeen);
    }

    [Fact]
    public void Warning_to_ok_is_a_change_and_a_finding_gone_is_resolved_with_when_it_was_first_seen()
    {
        var first = ReportDiff.Compute(null, Report(Check("kubelet", CheckState.Warning), Check("docker", CheckState.Ok), Finding("ns/a"), Finding("ns/b")), T1);
        var d = ReportDiff.Compute(first.Stored, Report(Check("kubelet", CheckState.Ok), Check("docker", CheckState.Ok), Finding("ns/b")), T2);
        var changed = Assert.Single(d.ChangedChecks);
        Assert.Equal(("kubelet", CheckState.Ok), (changed.Name, changed.State));
        var resolved = Assert.Single(d.Resolved);
        Assert.Equal(("ns/a", T1), (resolved.Subject, resolved.FirstSeen));
        var kept = Assert.Single(d.Stored.Findings);
        Assert.Equal(("ns/b", T1, T2), (kept.Subject, kept.FirstSeen, kept.LastSeen));
    }

    [Fact]
    public void The_same_report_against_the_same_stored_state_gives_the_same_changes_so_a_resend_after_a_refused_write_is_applied_in_full()
    {
        var stored = ReportDiff.Compute(null, Report(Check("kubelet", CheckState.Warning), Finding("ns/a")), T1).Stored;
        var report = Report(Check("kubelet", CheckState.Ok));
        var refused = ReportDiff.Compute(stored, report, T2); // its write failed: the stored state stays
        var resent = ReportDiff.Compute(stored, report, T2);
        Assert.Equal(refused.ChangedChecks, resent.ChangedChecks);
        Assert.Equal(refused.Resolved, resent.Resolved);
        Assert.Single(resent.ChangedChecks);
        Assert.Single(resent.Resolved);
        Assert.Equal(Report(Check("kubelet", CheckState.Warning), Finding("ns/a")).Findings.Count, stored.Findings.Count); // the base is not touched
    }

    [Fact]
    public void A_report_that_changes_nothing_has_no_history()
    {
        var stored = ReportDiff.Compute(null, Report(Check("kubelet", CheckState.Ok), Finding("ns/a")), T1).Stored;
        var d = ReportDiff.Compute(stored, Report(Check("kubelet", CheckState.Ok), Finding("ns/a")), T2);
        Assert.Empty(d.ChangedChecks);
        Assert.Empty(d.Resolved);
    }

    [Fact]
    public void A_check_without_a_verdict_yet_keeps_its_findings_as_stored_so_an_agent_restart_resolves_nothing()
    {
        var t3 = Timestamp.FromDateTimeOffset(T2.ToDateTimeOffset().AddMinutes(1));
        var rule = new Finding { Kind = "missing-rule", Subject = "ns/a", Message = "rule for ns/a", Check = "kube-proxy.iptables" };
        var first = ReportDiff.Compute(null, Report(Check("kube-proxy.iptables", CheckState.Failing), rule), T1);

        // The agent restarted (or was upgraded): its first report has the check, not run yet, and none of its findings.
        var restarted = ReportDiff.Compute(first.Stored, Report(Check("kube-proxy.iptables", CheckState.Unknown)), T2);
        Assert.Empty(restarted.Resolved);
        var kept = Assert.Single(restarted.Stored.Findings);
        Assert.Equal(("ns/a", T1, T1), (kept.Subject, kept.FirstSeen, kept.LastSeen));

        // Its verdict comes: the finding is the same one, first seen when it was first seen.
        var again = ReportDiff.Compute(restarted.Stored, Report(Check("kube-proxy.iptables", CheckState.Failing), rule), t3);
        Assert.Empty(again.Resolved);
        Assert.Equal((T1, t3), (again.Stored.Findings.Single().FirstSeen, again.Stored.Findings.Single().LastSeen));

        // A verdict without it resolves it; so does a report without the check at all (turned off).
        Assert.Single(ReportDiff.Compute(restarted.Stored, Report(Check("kube-proxy.iptables", CheckState.Ok)), t3).Resolved);
        Assert.Single(ReportDiff.Compute(restarted.Stored, Report(Check("kubelet", CheckState.Ok)), t3).Resolved);
    }

    [Fact]
    public void A_check_that_does_not_apply_or_that_reports_findings_of_its_own_does_not_keep_the_stored_ones()
    {
        static Finding Of(string check, string subject) => new() { Kind = "missing-rule", Subject = subject, Message = "m", Check = check };
        var first = ReportDiff.Compute(null, Report(Check("kube-proxy.iptables", CheckState.Failing), Of("kube-proxy.iptables", "ns/a")), T1);

        // Not a node any more: the check does not apply, so its findings resolve (they would otherwise stay for ever).
        var na = new CheckResult { Name = "kube-proxy.iptables", State = CheckState.Unknown, Message = "not a node" };
        na.Details.Add(Common.Checks.CheckDetails.NotApplicableKey, "true");
        Assert.Equal(["ns/a"], ReportDiff.Compute(first.Stored, Report(na), T2).Resolved.Select(f => f.Subject));

        // Unknown but with findings of its own in the report: those are its findings (no pile-up of stored ones).
        var own = ReportDiff.Compute(first.Stored, Report(Check("kube-proxy.iptables", CheckState.Unknown), Of("kube-proxy.iptables", "ns/b")), T2);
        Assert.Equal(["ns/b"], own.Stored.Findings.Select(f => f.Subject));
    }
}
