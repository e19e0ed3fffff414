using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>The ladder's deciding core, rung by rung, with the time given in each view (no clock, no sleep).</summary>
public sealed class IncidentLadderTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 2, 15, 0, TimeSpan.Zero);
    private const string Boot1 = "7f3c1e5a-0b1d-4c1e-9a55-1f2e3d4c5b6a";
    private const string Boot2 = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a";

    private static LadderOptions Options(Action<LadderOptions>? edit = null)
    {
        var o = new LadderOptions { Enabled = true };
        edit?.Invoke(o);
        return o;
    }

    private static Incident Open(Rung first, string? unit = null) =>
        IncidentLadder.Open("stuck-processes-20261206T021500", new TriggerHit("stuck-processes", unit, first, "why"), T0, Boot1);

    private static LadderView View(TimeSpan at, bool healthy = false, bool ready = true, bool? ours = true, string boot = Boot1, DateTimeOffset? restarted = null, bool ended = false) =>
        new(T0 + at, boot, healthy, ready, ours, restarted, ended);

    [Fact]
    public void RebootAndHardReset_OnlyWithOurCordonSeenNow_TheNodeUnreadableWaits()
    {
        // Review B2: the Node unreadable (CordonedByUs null) still gave the reboot.
        var o = Options(x => x.HardReset.Command = ["/usr/local/sbin/wmcs-force-reboot"]);
        var atReboot = IncidentLadder.AfterDrain(Open(Rung.Drain), DrainEnd.Drained, "m", T0, o).Next;
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(atReboot, View(TimeSpan.FromMinutes(1), ours: null), o).Action);
        Assert.Equal(LadderAction.Reboot, IncidentLadder.Decide(atReboot, View(TimeSpan.FromMinutes(1), ours: true), o).Action);
        var atHardReset = atReboot with { Rung = Rung.HardReset, RebootAsked = true };
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(atHardReset, View(TimeSpan.FromMinutes(1), ours: null), o).Action);
        Assert.Equal(LadderAction.HardReset, IncidentLadder.Decide(atHardReset, View(TimeSpan.FromMinutes(1), ours: true), o).Action);

        // Not seen for the rung's timeout: stalled (said once), still no reboot.
        var late = IncidentLadder.Decide(atReboot, View(TimeSpan.FromMinutes(15), ours: null), o);
        Assert.Equal((LadderAction.Wait, "not-cordoned", "ladder-stalled"), (late.Action, late.Next.Stalled, late.EventKind));
        Assert.Null(IncidentLadder.Decide(late.Next, View(TimeSpan.FromMinutes(16), ours: null), o).EventKind);
    }

    [Fact]
    public void AnIncidentOpenedAtTheRestart_RebootedBeforeItsDrain_IsDrainedNotRecovered()
    {
        // Review B1: the incident kept its first boot id into the drain; an unrelated reboot during the restart rung sent
        // it straight to recover, with no cordon and no drain.
        var o = Options();
        var i = IncidentLadder.Restarted(Open(Rung.Restart, "kubelet.service"), T0);
        var s = IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(6), ours: null, boot: Boot2), o);
        Assert.Equal(Rung.Drain, s.Next.Rung);
        Assert.Equal(Boot2, s.Next.BootId);
        var d = IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(6) + TimeSpan.FromSeconds(10), ours: false, boot: Boot2), o);
        Assert.Equal(LadderAction.Drain, d.Action);
        Assert.Equal(Rung.Drain, d.Next.Rung);
    }

    [Fact]
    public void Restart_RestartsOnce_ThenEscalatesToTheDrainAfterItsTimeout()
    {
        var o = Options();
        var i = Open(Rung.Restart, "containerd.service");
        var s = IncidentLadder.Decide(i, View(TimeSpan.Zero, ours: null), o);
        Assert.Equal(LadderAction.RestartUnit, s.Action);
        Assert.Equal("ladder-restart", s.EventKind);
        i = IncidentLadder.Restarted(s.Next, T0 + TimeSpan.FromSeconds(1));

        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(4), ours: null), o).Action);
        s = IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1), ours: null), o);
        Assert.Equal(LadderAction.Wait, s.Action);
        Assert.Equal(Rung.Drain, s.Next.Rung);
        Assert.Equal("ladder-escalated", s.EventKind);
        Assert.Equal(LadderAction.Drain, IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(2), ours: false), o).Action);
    }

    [Fact]
    public void Restart_HealthyAgain_EndsTheIncidentWithoutACordon()
    {
        var i = IncidentLadder.Restarted(Open(Rung.Restart, "kubelet.service"), T0);
        var s = IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(1), healthy: true, ours: null), Options());
        Assert.Equal(LadderAction.End, s.Action);
        Assert.Equal("kubelet.service is healthy again after its restart", s.Next.End);
    }

    [Fact]
    public void Restart_AFailedRestart_IsTriedAgainOnlyAfterTheCooldown()
    {
        var o = Options();
        var i = IncidentLadder.Failed(Open(Rung.Restart, "kubelet.service"), T0);
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(i, View(TimeSpan.FromSeconds(59), ours: null), o).Action);
        Assert.Equal(LadderAction.RestartUnit, IncidentLadder.Decide(i, View(TimeSpan.FromSeconds(60), ours: null), o).Action);
    }

    [Fact]
    public void Restart_AlreadyDoneByTheGuardedRestart_IsNotDoneAgain()
    {
        var s = IncidentLadder.Decide(Open(Rung.Restart, "kubelet.service"), View(TimeSpan.Zero, ours: null, restarted: T0 - TimeSpan.FromMinutes(1)), Options());
        Assert.Equal(LadderAction.Wait, s.Action);
        Assert.True(s.Next.Acted);
        // Its timeout counts from that restart: 4 minutes later it escalates.
        Assert.Equal(Rung.Drain, IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(4), ours: null), Options()).Next.Rung);
    }

    [Theory]
    [InlineData(DrainEnd.Drained)]
    [InlineData(DrainEnd.Stuck)]
    public void Drain_DrainedOrStuck_GoesToTheReboot(DrainEnd end)
    {
        var s = IncidentLadder.AfterDrain(Open(Rung.Drain), end, "m", T0 + TimeSpan.FromMinutes(3), Options());
        Assert.Equal(Rung.Reboot, s.Next.Rung);
        Assert.True(s.Next.Cordoned);
    }

    [Theory]
    [InlineData(DrainEnd.Blocked)]
    [InlineData(DrainEnd.Slow)]
    [InlineData(DrainEnd.Failed)]
    [InlineData(DrainEnd.Refused)]
    public void Drain_BlockedSlowFailedOrRefused_NeverReboots_AndIsTriedAgainAfterTheCooldown(DrainEnd end)
    {
        var o = Options();
        var i = Open(Rung.Drain);
        var s = IncidentLadder.Decide(i, View(TimeSpan.Zero, ours: false), o);
        Assert.Equal(LadderAction.Drain, s.Action);
        var after = IncidentLadder.AfterDrain(s.Next, end, "a budget", T0 + TimeSpan.FromMinutes(10), o);
        Assert.Equal(LadderAction.Wait, after.Action);
        Assert.Equal(Rung.Drain, after.Next.Rung);
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(after.Next, View(TimeSpan.FromMinutes(14)), o).Action);
        Assert.Equal(LadderAction.Drain, IncidentLadder.Decide(after.Next, View(TimeSpan.FromMinutes(15)), o).Action);
    }

    [Fact]
    public void Drain_NotDoneWithinItsTimeout_StallsOnce_AndKeepsTrying()
    {
        var o = Options();
        var i = Open(Rung.Drain) with { LastAttempt = T0 + TimeSpan.FromHours(2) - TimeSpan.FromMinutes(1), Cordoned = true };
        var s = IncidentLadder.Decide(i, View(TimeSpan.FromHours(2)), o);
        Assert.Equal("ladder-stalled", s.EventKind);
        var again = IncidentLadder.Decide(s.Next, View(TimeSpan.FromHours(2) + TimeSpan.FromMinutes(5)), o);
        Assert.Null(again.EventKind);
        Assert.Equal(LadderAction.Drain, again.Action);
    }

    [Fact]
    public void Drain_Cancelled_EndsTheIncident()
    {
        var s = IncidentLadder.AfterDrain(Open(Rung.Drain), DrainEnd.Cancelled, "uncordoned by someone else", T0, Options());
        Assert.Equal(LadderAction.End, s.Action);
        Assert.NotNull(s.Next.Ended);
    }

    [Fact]
    public void Reboot_IsAskedOnce_EvenWhenTheAgentRestartsWithTheSameBoot()
    {
        var o = Options();
        var s = IncidentLadder.Decide(Open(Rung.Drain) with { Rung = Rung.Reboot }, View(TimeSpan.Zero), o);
        Assert.Equal(LadderAction.Reboot, s.Action);
        Assert.True(s.Next.RebootAsked);

        // The record as saved before logind was asked, read back by a restarted agent in the same boot.
        var resumed = s.Next;
        for (var m = 1; m < 15; m++)
        {
            Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(resumed, View(TimeSpan.FromMinutes(m)), o).Action);
        }

        var late = IncidentLadder.Decide(resumed, View(TimeSpan.FromMinutes(15)), o);
        Assert.Equal(LadderAction.Wait, late.Action);
        Assert.Equal("ladder-stalled", late.EventKind); // no HardReset:Command: an admin decides, never a second reboot
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(late.Next, View(TimeSpan.FromHours(5)), o).Action);
        Assert.Null(IncidentLadder.Decide(late.Next, View(TimeSpan.FromHours(5)), o).EventKind);
    }

    [Fact]
    public void Reboot_ThatDidNotHappen_GoesToTheHardReset_RunOnce()
    {
        var o = Options(x => x.HardReset.Command = ["/usr/local/sbin/force-reboot", "tools-k8s-worker-nfs-3"]);
        var asked = IncidentLadder.Decide(Open(Rung.Reboot), View(TimeSpan.Zero), o).Next;
        var s = IncidentLadder.Decide(asked, View(TimeSpan.FromMinutes(15)), o);
        Assert.Equal(Rung.HardReset, s.Next.Rung);
        var run = IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(16)), o);
        Assert.Equal(LadderAction.HardReset, run.Action);
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(run.Next, View(TimeSpan.FromMinutes(20)), o).Action);
        Assert.Equal("ladder-stalled", IncidentLadder.Decide(run.Next, View(TimeSpan.FromMinutes(31)), o).EventKind);
    }

    [Fact]
    public void AfterTheReboot_ANewBoot_IsRecovered_NeverRebootedAgain()
    {
        var o = Options();
        var asked = IncidentLadder.Decide(Open(Rung.Reboot), View(TimeSpan.Zero), o).Next;
        var back = IncidentLadder.Decide(asked, View(TimeSpan.FromMinutes(3), boot: Boot2, ready: false), o);
        Assert.Equal(Rung.Recover, back.Next.Rung);
        Assert.Equal("ladder-rebooted", back.EventKind);
        Assert.Contains("back from the reboot", back.Message, StringComparison.Ordinal);
        Assert.True(back.Next.RebootAsked);
    }

    [Fact]
    public void Recover_UncordonsOnlyAfterReadyAndGreenContinuouslyForHealthyFor()
    {
        var o = Options();
        var i = Open(Rung.Recover) with { BootId = Boot1, RebootAsked = true, Cordoned = true };
        var at = TimeSpan.FromMinutes(1);
        var s = IncidentLadder.Decide(i, View(at, healthy: true, boot: Boot2), o);
        Assert.Equal(LadderAction.Wait, s.Action);
        Assert.Equal(T0 + at, s.Next.HealthySince);

        // Not Ready for a moment at 9 minutes: the count starts again.
        s = IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(9), healthy: true, ready: false, boot: Boot2), o);
        Assert.Null(s.Next.HealthySince);
        s = IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(10), healthy: true, boot: Boot2), o);
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(19), healthy: true, boot: Boot2), o).Action);
        var go = IncidentLadder.Decide(s.Next, View(TimeSpan.FromMinutes(20), healthy: true, boot: Boot2), o);
        Assert.Equal(LadderAction.Uncordon, go.Action);
        Assert.Equal("ladder-healthy", go.EventKind);
    }

    [Fact]
    public void Recover_ReadyButAFailingCheck_IsNotHealthy_AndStallsAfterItsTimeout()
    {
        var o = Options();
        var i = Open(Rung.Recover) with { Cordoned = true };
        Assert.Null(IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(30), healthy: false, boot: Boot2), o).Next.HealthySince);
        Assert.Equal("ladder-stalled", IncidentLadder.Decide(i, View(TimeSpan.FromHours(1), healthy: false, boot: Boot2), o).EventKind);
    }

    [Theory]
    [InlineData(Rung.Drain)]
    [InlineData(Rung.Reboot)]
    [InlineData(Rung.Recover)]
    public void AnAdminUncordon_AfterOurCordonWasSeen_EndsTheIncident(Rung rung)
    {
        var i = Open(rung) with { Cordoned = true };
        var s = IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(1), ours: false), Options());
        Assert.Equal(LadderAction.End, s.Action);
        Assert.Contains("uncordoned", s.Next.End, StringComparison.Ordinal);
    }

    [Fact]
    public void TheApiServerDown_CannotTellAnUncordon_AndEndsNothing()
    {
        var i = Open(Rung.Recover) with { Cordoned = true };
        Assert.Equal(LadderAction.Wait, IncidentLadder.Decide(i, View(TimeSpan.FromMinutes(1), ours: null, ready: false), Options()).Action);
    }

    [Fact]
    public void ACancelAtTheCoordinator_EndsTheIncidentAtAnyRung()
    {
        foreach (var rung in Enum.GetValues<Rung>())
        {
            Assert.Equal(LadderAction.End, IncidentLadder.Decide(Open(rung), View(TimeSpan.Zero, ended: true), Options()).Action);
        }
    }

    [Fact]
    public void ANewIncident_WaitsTheCooldownAfterTheLastEnded()
    {
        var o = Options();
        var ended = IncidentLadder.End(Open(Rung.Recover), T0, "recovered: uncordoned").Next;
        Assert.False(IncidentLadder.MayOpen(Open(Rung.Drain), T0 + TimeSpan.FromDays(1), o)); // open: resumed, not a new one
        Assert.False(IncidentLadder.MayOpen(ended, T0 + TimeSpan.FromMinutes(59), o));
        Assert.True(IncidentLadder.MayOpen(ended, T0 + TimeSpan.FromHours(1), o));
        Assert.True(IncidentLadder.MayOpen(null, T0, o));
    }

    [Fact]
    public void TheRecord_RoundTripsThroughItsFile()
    {
        using var dir = new TempDir();
        var i = Open(Rung.Reboot) with { RebootAsked = true, Cordoned = true, LastAttempt = T0, Stalled = "reboot" };
        i.Save(dir.Path);
        Assert.Equal(i, Incident.Load(dir.Path, out var problem));
        Assert.Null(problem);
        Assert.Contains("\"rung\":\"Reboot\"", File.ReadAllText(Incident.PathIn(dir.Path)), StringComparison.Ordinal);

        File.WriteAllText(Incident.PathIn(dir.Path), "{\"id\":");
        Assert.Null(Incident.Load(dir.Path, out problem));
        Assert.NotNull(problem);
    }
}
