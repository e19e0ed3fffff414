using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// How a node is judged from its agents' latest reports, at the thresholds: stale after 3 heartbeats of silence,
/// missing after MissingAfter, a stale agent among fresh ones a warning, a not-applicable check ok.
/// </summary>
public sealed class NodeJudgeTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MissingAfter = TimeSpan.FromDays(1);
    private static readonly HashSet<AgentKind> NoneConnected = [];

    private static AgentRecord Agent(AgentKind kind, TimeSpan silentFor, params CheckResult[] checks)
    {
        var state = new ReportRequest { Node = "worker-1", Agent = kind };
        state.Checks.Add(checks);
        return new AgentRecord(kind, "1.0.0", Now - silentFor, Heartbeat, state);
    }

    private static NodeSummary Judge(params AgentRecord[] agents) =>
        NodeJudge.Summarize("worker-1", agents, NoneConnected, Now, MissingAfter);

    [Fact]
    public void Summarize_NoAgentEverReported_IsMissing_NeverReported()
    {
        var s = Judge();
        Assert.Equal((NodeState.Missing, "never reported"), (s.State, s.Summary));
    }

    [Fact]
    public void Summarize_SilentForExactlyThreeHeartbeats_IsOk_AndOneTickMore_IsStale()
    {
        var atLimit = Judge(Agent(AgentKind.Node, 3 * Heartbeat));
        Assert.Equal(NodeState.Ok, atLimit.State);

        var past = Judge(Agent(AgentKind.Node, (3 * Heartbeat) + TimeSpan.FromTicks(1)));
        Assert.Equal(NodeState.Stale, past.State);
        Assert.Equal("no report for 30s", past.Summary);
    }

    [Fact]
    public void Summarize_SilentForExactlyMissingAfter_IsStale_AndOneTickMore_IsMissing()
    {
        var atLimit = Judge(Agent(AgentKind.Node, MissingAfter));
        Assert.Equal((NodeState.Stale, "no report for 1d0h"), (atLimit.State, atLimit.Summary));

        var past = Judge(Agent(AgentKind.Node, MissingAfter + TimeSpan.FromTicks(1)));
        Assert.Equal(NodeState.Missing, past.State);
        Assert.Equal("no report since 2026-12-05 11:59Z", past.Summary);
    }

    [Fact]
    public void Summarize_OneOfTwoAgentsStale_IsAWarningNamingIt_NotAStaleNode()
    {
        var s = Judge(Agent(AgentKind.Node, TimeSpan.FromSeconds(1)), Agent(AgentKind.LogShipper, TimeSpan.FromSeconds(95)));
        Assert.Equal(NodeState.Warning, s.State);
        Assert.Equal("log-shipper silent for 1m35s", s.Summary);
    }

    [Fact]
    public void Summarize_FailingBeatsWarning_AndTheWorstCheckIsTheSummary()
    {
        var s = Judge(Agent(AgentKind.Node, TimeSpan.Zero,
            new CheckResult { Name = "a.warn", State = CheckState.Warning, Message = "meh" },
            new CheckResult { Name = "b.fail", State = CheckState.Failing, Message = "down" },
            new CheckResult { Name = "c.unknown", State = CheckState.Unknown, Message = "?" }));
        Assert.Equal((NodeState.Failing, "b.fail: down", 1, 2), (s.State, s.Summary, s.FailingChecks, s.WarningChecks));
    }

    [Fact]
    public void Summarize_ANotApplicableCheck_IsJudgedOk_ButAPlainUnknownIsAWarning()
    {
        var notApplicable = new CheckResult { Name = "kubelet.unit", State = CheckState.Unknown, Message = "not applicable on this host" };
        notApplicable.Details[Common.Checks.CheckDetails.NotApplicableKey] = "true";
        var ok = Judge(Agent(AgentKind.Node, TimeSpan.Zero, notApplicable));
        Assert.Equal((NodeState.Ok, 0, string.Empty), (ok.State, ok.WarningChecks, ok.Summary));

        var unknown = Judge(Agent(AgentKind.Node, TimeSpan.Zero, new CheckResult { Name = "kubelet.unit", State = CheckState.Unknown, Message = "no answer" }));
        Assert.Equal((NodeState.Warning, 1, "kubelet.unit: no answer"), (unknown.State, unknown.WarningChecks, unknown.Summary));
    }

    [Fact]
    public void Summarize_AcknowledgedFindings_AreCountedApart()
    {
        var agent = Agent(AgentKind.Node, TimeSpan.Zero);
        agent.State.Findings.Add(new Finding { Kind = "missing-rule", Subject = "a" });
        agent.State.Findings.Add(new Finding { Kind = "missing-rule", Subject = "b" });
        agent.State.Findings.Add(new Finding { Kind = "stale-rule", Subject = "c" });
        var s = NodeJudge.Summarize("worker-1", [agent], NoneConnected, Now, MissingAfter, (_, f) => f.Subject == "b");
        Assert.Equal((2, 1), (s.Findings, s.AcknowledgedFindings));
    }

    [Fact]
    public void Summarize_ListsEveryAgent_ByKind_WithItsCommandStream()
    {
        var s = NodeJudge.Summarize("builder-1", [Agent(AgentKind.LogShipper, TimeSpan.Zero), Agent(AgentKind.Builder, TimeSpan.Zero)],
            new HashSet<AgentKind> { AgentKind.Builder }, Now, MissingAfter);
        Assert.Equal([(AgentKind.Builder, true), (AgentKind.LogShipper, false)], s.Agents.Select(a => (a.Kind, a.CommandsConnected)));
    }

    [Fact]
    public void SameUntil_IsTheFirstMomentAnAgentTurnsStale_AndTheJudgementHoldsUpToIt()
    {
        var agents = new[] { Agent(AgentKind.Node, TimeSpan.FromSeconds(5)), Agent(AgentKind.LogShipper, TimeSpan.FromSeconds(12)) };
        var until = NodeJudge.SameUntil(agents, Now, MissingAfter);
        Assert.Equal(Now + TimeSpan.FromSeconds(18), until); // the log-shipper: 12 s silent, stale after 30 s

        var before = NodeJudge.Summarize("worker-1", agents, NoneConnected, Now, MissingAfter);
        var at = NodeJudge.Summarize("worker-1", agents, NoneConnected, until, MissingAfter);
        Assert.Equal((before.State, before.Summary), (at.State, at.Summary));
        var after = NodeJudge.Summarize("worker-1", agents, NoneConnected, until + TimeSpan.FromTicks(1), MissingAfter);
        Assert.NotEqual(before.State, after.State);
    }

    [Fact]
    public void SameUntil_AStaleNode_IsJudgedEveryTime_AMissingOneNeverAgain_AndNoAgentsNever()
    {
        Assert.Equal(Now, NodeJudge.SameUntil([Agent(AgentKind.Node, TimeSpan.FromMinutes(5))], Now, MissingAfter));
        Assert.Equal(DateTimeOffset.MaxValue, NodeJudge.SameUntil([Agent(AgentKind.Node, MissingAfter + TimeSpan.FromTicks(1))], Now, MissingAfter));
        Assert.Equal(DateTimeOffset.MaxValue, NodeJudge.SameUntil([], Now, MissingAfter));
    }

    [Theory]
    [InlineData(59, "59s")]
    [InlineData(60, "1m0s")]
    [InlineData(3599, "59m59s")]
    [InlineData(3600, "1h0m")]
    [InlineData(86399, "23h59m")]
    [InlineData(86400, "1d0h")]
    [InlineData(90061, "1d1h")]
    public void Human_EachUnitStartsAtItsBoundary(int seconds, string expected) =>
        Assert.Equal(expected, NodeJudge.Human(TimeSpan.FromSeconds(seconds)));
}
