using Toolforge.Agents.NodeAgent.Remediation.Ladder;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

public sealed class LadderTriggerJudgeTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 2, 15, 0, TimeSpan.Zero);

    private static LadderTriggers All(bool enabled = true) => new()
    {
        StuckProcesses = new TriggerAfter { Enabled = enabled },
        Kubelet = new TriggerAfter { Enabled = enabled },
        Runtime = new TriggerAfter { Enabled = enabled, After = TimeSpan.FromMinutes(5) },
        RebootRequired = new RebootRequiredTrigger { Enabled = enabled },
    };

    private static TriggerHit? Judge(LadderTriggers t, TimeSpan? stuck = null, TimeSpan? kubeletFailing = null, TimeSpan? kubeletRestarted = null, TimeSpan? runtimeFailing = null, bool rebootRequired = false) =>
        LadderTriggerJudge.Evaluate(new TriggerView(Now, stuck, Now - kubeletFailing, Now - kubeletRestarted, Now - runtimeFailing, rebootRequired), t, "kubelet.service", "containerd.service");

    [Fact]
    public void EveryTrigger_IsOffByDefault()
    {
        Assert.Null(Judge(new LadderTriggers(), stuck: TimeSpan.FromHours(1), kubeletFailing: TimeSpan.FromHours(1), runtimeFailing: TimeSpan.FromHours(1), rebootRequired: true));
    }

    [Fact]
    public void StuckProcesses_BeyondTheThreshold_StartAtTheDrain()
    {
        Assert.Null(Judge(All(), stuck: TimeSpan.FromMinutes(9)));
        var hit = Judge(All(), stuck: TimeSpan.FromMinutes(10));
        Assert.Equal(("stuck-processes", Rung.Drain), (hit!.Name, hit.FirstRung));
    }

    [Fact]
    public void Kubelet_WithoutAGuardedRestart_StartsAtTheRestart()
    {
        Assert.Null(Judge(All(), kubeletFailing: TimeSpan.FromMinutes(9)));
        var hit = Judge(All(), kubeletFailing: TimeSpan.FromMinutes(10));
        Assert.Equal(("kubelet", "kubelet.service", Rung.Restart), (hit!.Name, hit.Unit, hit.FirstRung));
    }

    [Fact]
    public void Kubelet_StillUnhealthyAfterTheGuardedRestart_StartsAtTheDrain_AfterItsWait()
    {
        // Failing for 20 min, restarted by the guarded restart 5 min ago: not yet.
        Assert.Null(Judge(All(), kubeletFailing: TimeSpan.FromMinutes(20), kubeletRestarted: TimeSpan.FromMinutes(5)));
        var hit = Judge(All(), kubeletFailing: TimeSpan.FromMinutes(20), kubeletRestarted: TimeSpan.FromMinutes(10));
        Assert.Equal(Rung.Drain, hit!.FirstRung);
        Assert.Contains("after the guarded restart", hit.Why, StringComparison.Ordinal);

        // A restart before this failure began is not "after the restart": counted from the failure.
        Assert.Equal(Rung.Restart, Judge(All(), kubeletFailing: TimeSpan.FromMinutes(10), kubeletRestarted: TimeSpan.FromHours(3))!.FirstRung);
    }

    [Fact]
    public void Runtime_Failing_StartsAtTheRestartOfItsUnit()
    {
        var hit = Judge(All(), runtimeFailing: TimeSpan.FromMinutes(5));
        Assert.Equal(("runtime", "containerd.service", Rung.Restart), (hit!.Name, hit.Unit, hit.FirstRung));
    }

    [Fact]
    public void RebootRequired_StartsAtTheDrain()
    {
        Assert.Equal(("reboot-required", Rung.Drain), (Judge(All(), rebootRequired: true)!.Name, Judge(All(), rebootRequired: true)!.FirstRung));
    }

    [Fact]
    public void Holds_ALabelAnAnnotationOrALockFile()
    {
        const string key = "remediation.toolforge.org/hold";
        Assert.Null(LadderTriggerJudge.Held(new Dictionary<string, string> { ["x"] = "y" }, null, key, null));
        Assert.Contains("label", LadderTriggerJudge.Held(new Dictionary<string, string> { [key] = "" }, null, key, null), StringComparison.Ordinal);
        Assert.Contains("annotation", LadderTriggerJudge.Held(null, new Dictionary<string, string> { [key] = "T12345" }, key, null), StringComparison.Ordinal);
        Assert.Contains("puppet", LadderTriggerJudge.Held(null, null, key, "/var/lib/puppet/state/agent_disabled.lock"), StringComparison.Ordinal);
    }
}
