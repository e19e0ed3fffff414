using Toolforge.Agents.NodeAgent.Remediation.Ladder;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>
/// The boot the ladder records: the kernel's boot id and PID 1's start. Found in the booted container under the
/// installed unit (LadderDeployTests): ProtectKernelTunables= hides systemd-nspawn's per-boot boot_id, so the agent read
/// the host kernel's id (0ccc1137-…) before and after the container's reboot and stalled at the reboot rung.
/// </summary>
public sealed class BootIdentityTests
{
    private const string Kernel = "0ccc1137-a054-4309-8ee2-bd2978c7b68a";
    private const string OtherKernel = "84081503-54bc-4372-9133-9afec25ece3c";

    // /proc/1/stat of a container's systemd (bookworm), and one whose command holds ") " as a process may name itself.
    private const string Stat = "1 (systemd) S 0 1 1 0 -1 4194560 1290 4862 22 20 23 11 5 6 20 0 1 0 4668412 22573056 3078 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
    private const string OddStat = "1 (a) b (c) S 0 1 1 0 -1 4194560 1290 4862 22 20 23 11 5 6 20 0 1 0 99 22573056 3078";

    [Fact]
    public void InitStart_IsField22_EvenWithParenthesesInTheCommand()
    {
        Assert.Equal("4668412", BootIdentity.InitStart(Stat));
        Assert.Equal("99", BootIdentity.InitStart(OddStat));
        Assert.Null(BootIdentity.InitStart("1 (systemd) S 0 1"));
        Assert.Null(BootIdentity.InitStart("garbage"));
    }

    [Fact]
    public void ANewInit_OnTheSameKernel_IsANewBoot_AsIsANewKernelBoot()
    {
        Assert.True(BootIdentity.SameBoot(BootIdentity.Of(Kernel, "4668412"), BootIdentity.Of(Kernel, "4668412")));
        Assert.False(BootIdentity.SameBoot(BootIdentity.Of(Kernel, "4668412"), BootIdentity.Of(Kernel, "4690031"))); // the container booted again
        Assert.False(BootIdentity.SameBoot(BootIdentity.Of(Kernel, "120"), BootIdentity.Of(OtherKernel, "120"))); // a VM rebooted
    }

    [Fact]
    public void ARecordOfTheKernelsIdAlone_MatchesItsKernelBoot_SoAnUpgradeMidIncidentIsNoReboot()
    {
        Assert.True(BootIdentity.SameBoot(Kernel, BootIdentity.Of(Kernel, "4668412")));
        Assert.True(BootIdentity.SameBoot(BootIdentity.Of(Kernel, "4668412"), Kernel)); // /proc/1/stat unreadable now
        Assert.False(BootIdentity.SameBoot(Kernel, BootIdentity.Of(OtherKernel, "4668412")));
        Assert.Equal(Kernel, BootIdentity.Of(Kernel, null));
    }

    [Fact]
    public void TheLadder_AtItsRebootRung_SeesTheContainersReboot_ButNotAnUpgradedAgent()
    {
        var o = new LadderOptions { Enabled = true };
        var t0 = new DateTimeOffset(2026, 12, 6, 12, 15, 39, TimeSpan.Zero);
        var asked = IncidentLadder.Open("stuck-processes-20261206T121539", new TriggerHit("stuck-processes", null, Rung.Reboot, "why"), t0, BootIdentity.Of(Kernel, "4668412")) with { Cordoned = true, RebootAsked = true };
        LadderStep At(string boot) => IncidentLadder.Decide(asked, new LadderView(t0 + TimeSpan.FromSeconds(30), boot, false, true, true), o);

        Assert.Equal("ladder-rebooted", At(BootIdentity.Of(Kernel, "4690031")).EventKind);
        Assert.Equal(Rung.Recover, At(BootIdentity.Of(Kernel, "4690031")).Next.Rung);
        Assert.Equal(Rung.Reboot, At(BootIdentity.Of(Kernel, "4668412")).Next.Rung);

        var recordedBefore = asked with { BootId = Kernel }; // saved by an agent of before this change, read after an upgrade
        Assert.Equal(Rung.Reboot, IncidentLadder.Decide(recordedBefore, new LadderView(t0 + TimeSpan.FromSeconds(30), BootIdentity.Of(Kernel, "4668412"), false, true, true), o).Next.Rung);
    }
}
