using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

public sealed class AgentStateTests
{
    private static (AgentState State, FakeTimeProvider Time, ListLogger<AgentState> Log) Make()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var log = new ListLogger<AgentState>();
        return (new AgentState(time, log), time, log);
    }

    [Fact]
    public void ARepeatedResult_KeepsItsSince_AndLogsOnlyTheChange()
    {
        var (state, time, log) = Make();
        Assert.True(state.SetCheck("a", CheckState.Failing, "down"));
        var since = state.GetCheck("a")!.Since;
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.False(state.SetCheck("a", CheckState.Failing, "still down"));
        Assert.Equal(since, state.GetCheck("a")!.Since);
        Assert.Equal("still down", state.GetCheck("a")!.Message);
        Assert.True(state.SetCheck("a", CheckState.Ok, "up"));
        Assert.Equal(2, log.Lines.Count);
    }

    [Fact]
    public void Quiet_LogsAtInformation()
    {
        var (state, _, log) = Make();
        state.SetCheck("a", CheckState.Unknown, "peer down", quiet: true);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Information, log.Lines.Single().Level);
    }

    [Fact]
    public async Task AChange_WakesTheReporter_ASameResultDoesNot()
    {
        var (state, _, _) = Make();
        state.SetCheck("a", CheckState.Ok, "up");
        Assert.True(await state.WaitForChangeAsync(CancellationToken.None)); // the first result is a change
        state.SetCheck("a", CheckState.Ok, "up again");
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => state.WaitForChangeAsync(cts.Token).AsTask());
    }

    [Fact]
    public void Events_GoOutOldestFirst_AtMostWhatAReportCarries_AndAckDropsOnlyThose()
    {
        var (state, _, _) = Make();
        for (var i = 0; i < 1000; i++)
        {
            state.AddEvent("e", $"event {i}");
        }

        var first = state.Snapshot(out var last);
        Assert.Equal(Contracts.ReportLimits.MaxEvents, first.Events.Count);
        Assert.Equal("event 0", first.Events[0].Message);
        state.AddEvent("e", "later"); // the queue is full: the oldest (already sent) goes, "later" must not be lost
        state.AcknowledgeEvents(last);
        var second = state.Snapshot(out _);
        Assert.Equal("later", second.Events.Single().Message);
    }

    [Fact]
    public void A_check_expected_but_not_run_yet_is_in_the_snapshot_without_a_verdict_and_leaves_it_once_it_answers()
    {
        var (state, _, _) = Make();
        state.Expect(["b.audit", "a.unit"]);
        state.SetCheck("a.unit", CheckState.Ok, "up");
        var first = state.Snapshot(out _);
        Assert.Equal([("a.unit", CheckState.Ok), ("b.audit", CheckState.Unknown)], first.Checks.Select(c => (c.Name, c.State)));
        Assert.Equal(AgentState.NotRunYet, first.Checks[1].Message);
        state.SetCheck("b.audit", CheckState.Failing, "2 missing-rule");
        Assert.Equal(CheckState.Failing, state.Snapshot(out _).Checks.Single(c => c.Name == "b.audit").State);
    }

    [Fact]
    public void Findings_ReplacePerCheck_AndAChangeIsBySet()
    {
        var (state, _, _) = Make();
        Assert.True(state.SetFindings("audit", [new Finding { Kind = "missing-rule", Subject = "a" }]));
        Assert.False(state.SetFindings("audit", [new Finding { Kind = "missing-rule", Subject = "a", Message = "new text" }]));
        Assert.True(state.SetFindings("audit", []));
        Assert.Empty(state.GetFindings());
    }
}
