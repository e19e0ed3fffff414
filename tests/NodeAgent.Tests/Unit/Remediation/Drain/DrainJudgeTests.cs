using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.NodeAgent.Remediation.Drain;

namespace Toolforge.Agents.NodeAgent.Tests.Unit;

/// <summary>The drain's deciding cores, with times chosen by the test (no clock, no I/O).</summary>
public sealed class DrainJudgeTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 3, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan StuckAfter = TimeSpan.FromMinutes(2);
    private static readonly HashSet<string> NoneStuck = [];

    private static Remaining Pod(string name, Hold hold, DateTimeOffset? due = null, string detail = "") => new("tool-a", name, "uid-" + name, hold, detail, due);

    private static DrainVerdict Judge(IReadOnlyList<Remaining> pods, TimeSpan elapsed, IReadOnlySet<string>? stuck = null) =>
        DrainJudge.Judge(pods, stuck ?? NoneStuck, T0, T0 + elapsed, Timeout, StuckAfter);

    [Theory]
    [InlineData("budget+stuck", 1, "blocked")]   // a budget says no: never a reboot, whatever else is left
    [InlineData("budgets", 1, "blocked")]        // several budgets select it (500)
    [InlineData("stuck", 1, "stuck")]            // within the grace: stuck, the reboot comes after it
    [InlineData("stuck", 3, "stuck")]            // past it
    [InlineData("terminating", 1, "slow")]       // terminating with no D evidence
    [InlineData("evicting", 1, "slow")]
    [InlineData("refused+evicting", 1, "refused")]
    [InlineData("stuck+refused", 11, "refused")] // the refusal is what stops the reboot: it is named
    [InlineData("stuck+evicting", 11, "slow")]   // not every pod stuck: no reboot, so not "stuck"
    [InlineData("stuck+terminating", 1, "slow")]
    [InlineData("budget", 11, "blocked")]        // past the timeout
    [InlineData("terminating", 11, "slow")]
    [InlineData("", 1, "drained")]
    public void EveryVerdict_IsClassifiedForTheStatus_ABudgetWinning(string left, int minutes, string expected)
    {
        var due = T0 + TimeSpan.FromSeconds(30);
        var pods = left.Split('+', StringSplitOptions.RemoveEmptyEntries).Select(k => k switch
        {
            "budget" => Pod("web-0", Hold.Budget),
            "budgets" => Pod("web-1", Hold.Budgets),
            "stuck" => Pod("nfs", Hold.Terminating, due),
            "terminating" => Pod("slow", Hold.Terminating, due),
            "evicting" => Pod("new", Hold.Evicting),
            _ => Pod("denied", Hold.Refused),
        }).ToList();
        var stuck = new HashSet<string> { "uid-nfs" };
        Assert.Equal(expected, DrainJudge.Classify(Judge(pods, TimeSpan.FromMinutes(minutes), stuck), stuck));
    }

    [Fact]
    public void NoPodLeft_IsDrained()
    {
        Assert.Equal(VerdictKind.Drained, Judge([], TimeSpan.Zero).Kind);
    }

    [Fact]
    public void ABudgetBlockedPod_IsWaitedForUntilTheTimeout_ThenBlocked_NeverStuck()
    {
        var pods = new[] { Pod("web-0", Hold.Budget, detail: "The disruption budget web needs 2 healthy pods and has 2 currently") };
        Assert.Equal(VerdictKind.Waiting, Judge(pods, Timeout - TimeSpan.FromTicks(1)).Kind);
        var v = Judge(pods, Timeout);
        Assert.Equal(VerdictKind.Blocked, v.Kind);
        Assert.Equal("1 pod left: 1 blocked by a PodDisruptionBudget (tool-a/web-0: The disruption budget web needs 2 healthy pods and has 2 currently)", v.Summary);
    }

    [Fact]
    public void ATerminatingPod_IsStuckOnlyWithDEvidence_AndOnlyStuckAfterPastItsDeadline()
    {
        var due = T0 + TimeSpan.FromSeconds(30);
        var pods = new[] { Pod("nfs", Hold.Terminating, due) };
        var evidence = new HashSet<string> { "uid-nfs" };
        Assert.Equal(VerdictKind.Waiting, Judge(pods, TimeSpan.FromSeconds(30) + StuckAfter - TimeSpan.FromSeconds(1), evidence).Kind);
        Assert.Equal(VerdictKind.Stuck, Judge(pods, TimeSpan.FromSeconds(30) + StuckAfter, evidence).Kind);
        // No process of it seen in D on a network mount: only slow, even long past its deadline.
        Assert.Equal(VerdictKind.Waiting, Judge(pods, Timeout - TimeSpan.FromSeconds(1)).Kind);
        Assert.Equal(VerdictKind.Slow, Judge(pods, Timeout).Kind);
    }

    [Fact]
    public void AStuckPodBesideABudgetBlockedOne_IsNoRebootCandidate_TheBudgetDecides()
    {
        var pods = new[] { Pod("nfs", Hold.Terminating, T0), Pod("web-0", Hold.Budget) };
        var evidence = new HashSet<string> { "uid-nfs" };
        Assert.Equal(VerdictKind.Waiting, Judge(pods, StuckAfter, evidence).Kind);
        var v = Judge(pods, Timeout, evidence);
        Assert.Equal(VerdictKind.Blocked, v.Kind);
        Assert.Contains("1 terminating, 1 of them stuck with processes in D on a network mount (tool-a/nfs)", v.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void SeveralBudgets_AreBlocked_AndOtherRefusalsSlow()
    {
        Assert.Equal(VerdictKind.Blocked, Judge([Pod("a", Hold.Budgets)], Timeout).Kind);
        Assert.Equal(VerdictKind.Slow, Judge([Pod("a", Hold.Refused, detail: "forbidden")], Timeout).Kind);
        Assert.Equal(VerdictKind.Slow, Judge([Pod("a", Hold.Evicting)], Timeout).Kind);
    }

    [Fact]
    public void TheSummary_NamesAtMostFivePodsPerKind()
    {
        var pods = Enumerable.Range(0, 8).Select(i => Pod($"p{i}", Hold.Terminating, T0)).ToList();
        Assert.Equal("8 pods left: 8 terminating (tool-a/p0; tool-a/p1; tool-a/p2; tool-a/p3; tool-a/p4; and 3 more)", Judge(pods, TimeSpan.Zero).Summary);
    }

    [Fact]
    public void DaemonSetMirrorAndFinishedPods_AreLeftAlone_OthersEvicted()
    {
        static KubePod P(string? owner = null, bool mirror = false, string phase = "Running") => new()
        {
            Metadata = new KubeMeta
            {
                Name = "x",
                Annotations = mirror ? new() { [DrainJudge.MirrorAnnotation] = "abc" } : null,
                OwnerReferences = owner is null ? null : [new KubeOwnerReference { Kind = owner, Controller = true }],
            },
            Status = new KubePodStatus { Phase = phase },
        };

        Assert.Equal("DaemonSet pod", DrainJudge.LeftAlone(P("DaemonSet")));
        Assert.Equal("mirror pod", DrainJudge.LeftAlone(P(mirror: true)));
        Assert.Equal("finished", DrainJudge.LeftAlone(P(phase: "Succeeded")));
        Assert.Equal("finished", DrainJudge.LeftAlone(P(phase: "Failed")));
        Assert.Null(DrainJudge.LeftAlone(P("ReplicaSet")));
        Assert.Null(DrainJudge.LeftAlone(P()));
        // A DaemonSet named as an owner but not the controller does not make a pod a DaemonSet pod.
        var notController = P();
        notController.Metadata!.OwnerReferences = [new KubeOwnerReference { Kind = "DaemonSet", Controller = false }];
        Assert.Null(DrainJudge.LeftAlone(notController));
    }

    [Fact]
    public void TheMark_RemembersWhatTheNodeWasBeforeItsIncident_AndALeftoverMarkOfAnotherIncidentSaysNothing()
    {
        var first = CordonMark.ForCordon(null, "inc-1", unschedulable: false, T0);
        Assert.False(first.UnschedulableBefore);
        // inc-1 resumed (a restart): its mark's prior state stands.
        Assert.Equal((false, T0), (CordonMark.ForCordon(first, "inc-1", unschedulable: true, T0.AddHours(1)).UnschedulableBefore, CordonMark.ForCordon(first, "inc-1", unschedulable: true, T0.AddHours(1)).At));
        // A mark inc-1 left behind says nothing about now (an admin may have cordoned the node since): inc-2 records the
        // Node as it is, erring on leaving it cordoned.
        var second = CordonMark.ForCordon(first, "inc-2", unschedulable: true, T0.AddHours(1));
        Assert.Equal(("inc-2", true), (second.Incident, second.UnschedulableBefore));
        Assert.True(CordonMark.ForCordon(null, "inc-3", unschedulable: true, T0).UnschedulableBefore);

        var read = CordonMark.Read(new Dictionary<string, string> { [CordonMark.Annotation] = second.ToJson() });
        Assert.Equal(second, read);
        Assert.Null(CordonMark.Read(new Dictionary<string, string> { [CordonMark.Annotation] = "{\"by\":\"someone-else\",\"incident\":\"x\",\"step\":\"cordon\",\"unschedulableBefore\":false,\"at\":\"2026-12-06T03:00:00Z\"}" }));
        Assert.Null(CordonMark.Read(new Dictionary<string, string> { [CordonMark.Annotation] = "not json" }));
        Assert.Null(CordonMark.Read(new Dictionary<string, string> { [CordonMark.Annotation] = new string('x', 5000) }));
        Assert.Null(CordonMark.Read(null));
    }

    [Fact]
    public void Uncordon_OnlyWhatWeCordoned_FromSchedulable_AndStillCordoned()
    {
        var ours = CordonMark.ForCordon(null, "inc-1", false, T0);
        Assert.Equal(UncordonDecision.Uncordon, Uncordon.Decide(ours, "inc-1", unschedulable: true));
        Assert.Equal(UncordonDecision.AlreadyUncordoned, Uncordon.Decide(ours, "inc-1", unschedulable: false));
        Assert.Equal(UncordonDecision.LeaveCordoned, Uncordon.Decide(ours with { UnschedulableBefore = true }, "inc-1", unschedulable: true));
        Assert.Equal(UncordonDecision.NotOurs, Uncordon.Decide(ours, "inc-2", unschedulable: true));
        Assert.Equal(UncordonDecision.NotOurs, Uncordon.Decide(null, "inc-1", unschedulable: true));
    }

    [Theory]
    [InlineData("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice/cri-containerd-0a1b2c.scope\n", "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")]
    [InlineData("0::/kubepods/burstable/pod1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901/0a1b2c3d4e5f\n", "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")]
    [InlineData("12:freezer:/kubepods/besteffort/pod1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901/abc\n11:cpu:/\n", "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")]
    [InlineData("0::/kubepods.slice/kubepods-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice\n", "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")]
    [InlineData("0::/system.slice/ssh.service\n", null)]
    [InlineData("0::/user.slice/mypod1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901x/\n", null)]
    public void APodsUid_IsReadFromTheProcessCgroup(string cgroup, string? uid)
    {
        Assert.Equal(uid, StuckProcessEvidence.PodUidOf(cgroup));
    }

    [Fact]
    public void Options_AreValidated_WithTheKeyNamed()
    {
        var o = new DrainOptions { Timeout = TimeSpan.Zero, GracePeriodSeconds = -2, ConflictRetries = -1, PageSize = 0, MaxPods = 0 };
        var problems = o.Validate("NodeAgent:Remediation:Drain").ToList();
        Assert.Equal(5, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("NodeAgent:Remediation:Drain:Timeout:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("NodeAgent:Remediation:Drain:GracePeriodSeconds:", StringComparison.Ordinal));
        Assert.Empty(new DrainOptions().Validate("x"));
        Assert.False(new DrainOptions().Enabled);
    }
}
