using System.Globalization;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>Why a pod is still on the node.</summary>
public enum Hold
{
    /// <summary>Not evicted yet, or its eviction was accepted and it has not started terminating.</summary>
    Evicting,

    /// <summary>Its eviction was refused with 429 and a DisruptionBudget cause: a budget says no. Wait, never force.</summary>
    Budget,

    /// <summary>Its eviction was refused with 500: more than one budget selects it (an admin must fix the budgets).</summary>
    Budgets,

    /// <summary>Its eviction was refused otherwise (403, 429 without a budget cause, ...).</summary>
    Refused,

    /// <summary>Deletion asked for (metadata.deletionTimestamp set), not gone yet.</summary>
    Terminating,
}

/// <summary>A pod still on the node, and why.</summary>
public sealed record Remaining(string Namespace, string Name, string Uid, Hold Hold, string Detail, DateTimeOffset? DeletionDue)
{
    public string Id => $"{Namespace}/{Name}";
}

public enum VerdictKind
{
    /// <summary>Every pod to evict is gone.</summary>
    Drained,

    /// <summary>Pods remain and the drain timeout has not passed: keep going.</summary>
    Waiting,

    /// <summary>Every pod left is Terminating past its deadline by StuckAfter with processes in D on a network mount: only a reboot helps.</summary>
    Stuck,

    /// <summary>The timeout passed with pods a PodDisruptionBudget (or several) protects: reported, never forced, no reboot.</summary>
    Blocked,

    /// <summary>The timeout passed with pods that are only slow (terminating, not stuck; refused otherwise).</summary>
    Slow,
}

public sealed record DrainVerdict(VerdictKind Kind, IReadOnlyList<Remaining> Pods, string Summary);

/// <summary>The drain's deciding core (no I/O): which pods a drain leaves alone, and what the pods still there mean.</summary>
public static class DrainJudge
{
    public const string MirrorAnnotation = "kubernetes.io/config.mirror";

    /// <summary>
    /// Why a pod is left on the node, or null when it is to be evicted: DaemonSet pods (their controller would put them
    /// back; kubectl drain --ignore-daemonsets), mirror pods (static pods: the API cannot delete them), pods already
    /// Succeeded or Failed (they hold nothing).
    /// </summary>
    public static string? LeftAlone(KubePod pod)
    {
        if (pod.Metadata?.Annotations?.ContainsKey(MirrorAnnotation) == true)
        {
            return "mirror pod";
        }

        if (pod.Metadata?.OwnerReferences?.Any(o => o.Controller == true && o.Kind == "DaemonSet") == true)
        {
            return "DaemonSet pod";
        }

        return pod.Status?.Phase is "Succeeded" or "Failed" ? "finished" : null;
    }

    public static bool IsStuck(Remaining p, IReadOnlySet<string> stuckUids, DateTimeOffset now, TimeSpan stuckAfter) =>
        p.Hold == Hold.Terminating && p.DeletionDue is { } due && now - due >= stuckAfter && stuckUids.Contains(p.Uid);

    public static DrainVerdict Judge(IReadOnlyList<Remaining> remaining, IReadOnlySet<string> stuckUids, DateTimeOffset started, DateTimeOffset now, TimeSpan timeout, TimeSpan stuckAfter)
    {
        if (remaining.Count == 0)
        {
            return new DrainVerdict(VerdictKind.Drained, remaining, "every pod to evict is gone");
        }

        var stuck = remaining.Where(p => IsStuck(p, stuckUids, now, stuckAfter)).ToList();
        var summary = Summary(remaining, stuck);
        if (stuck.Count == remaining.Count)
        {
            return new DrainVerdict(VerdictKind.Stuck, remaining, summary);
        }

        if (now - started < timeout)
        {
            return new DrainVerdict(VerdictKind.Waiting, remaining, summary);
        }

        return remaining.Any(p => p.Hold is Hold.Budget or Hold.Budgets)
            ? new DrainVerdict(VerdictKind.Blocked, remaining, summary)
            : new DrainVerdict(VerdictKind.Slow, remaining, summary);
    }

    /// <summary>
    /// What holds a drain, in one word, for the status an admin reads, in the order that decides: <c>blocked</c> (a
    /// PodDisruptionBudget, or several, says no now: it waits and is never forced; no reboot while it says no),
    /// <c>refused</c> (an eviction refused otherwise: it waits for an admin), <c>stuck</c> (every pod left is terminating
    /// with processes in D on a network mount: the reboot follows once they are StuckAfter past their deadline),
    /// <c>slow</c> (pods being evicted or terminating, or stuck ones beside them), <c>drained</c>.
    /// </summary>
    public static string Classify(DrainVerdict v, IReadOnlySet<string> stuckUids) => v.Kind switch
    {
        VerdictKind.Drained => "drained",
        VerdictKind.Stuck => "stuck",
        _ when v.Pods.Any(p => p.Hold is Hold.Budget or Hold.Budgets) => "blocked",
        _ when v.Pods.Any(p => p.Hold == Hold.Refused) => "refused",
        _ when v.Pods.Count > 0 && v.Pods.All(p => p.Hold == Hold.Terminating && stuckUids.Contains(p.Uid)) => "stuck",
        _ => "slow",
    };

    /// <summary>The class words <see cref="Classify"/> and the drain's failures lead the check remediation.drain with.</summary>
    public static IReadOnlyList<string> Classes => Common.Contracts.ContractNames.RemediationDrainClasses;

    /// <summary>"3 pods left: 1 blocked by a PodDisruptionBudget (ns/a: ...); 2 terminating, 1 of them stuck (ns/b)" — at most 5 named per kind.</summary>
    public static string Summary(IReadOnlyList<Remaining> remaining, IReadOnlyList<Remaining> stuck)
    {
        static string Names(IEnumerable<Remaining> ps, bool withDetail)
        {
            var list = ps.ToList();
            var shown = string.Join("; ", list.Take(5).Select(p => withDetail && p.Detail.Length > 0 ? $"{p.Id}: {p.Detail}" : p.Id));
            return list.Count > 5 ? $"{shown}; and {list.Count - 5} more" : shown;
        }

        var parts = new List<string>();
        void Add(Hold h, string what, bool detail)
        {
            var ps = remaining.Where(p => p.Hold == h).ToList();
            if (ps.Count > 0)
            {
                parts.Add($"{ps.Count.ToString(CultureInfo.InvariantCulture)} {what} ({Names(ps, detail)})");
            }
        }

        Add(Hold.Budget, "blocked by a PodDisruptionBudget", true);
        Add(Hold.Budgets, "selected by more than one PodDisruptionBudget", false);
        Add(Hold.Refused, "whose eviction was refused", true);
        Add(Hold.Evicting, "being evicted", false);
        var terminating = remaining.Where(p => p.Hold == Hold.Terminating).ToList();
        if (terminating.Count > 0)
        {
            parts.Add($"{terminating.Count.ToString(CultureInfo.InvariantCulture)} terminating" + (stuck.Count > 0
                ? $", {stuck.Count.ToString(CultureInfo.InvariantCulture)} of them stuck with processes in D on a network mount ({Names(stuck, false)})"
                : $" ({Names(terminating, false)})"));
        }

        return $"{remaining.Count.ToString(CultureInfo.InvariantCulture)} pod{(remaining.Count == 1 ? string.Empty : "s")} left: {string.Join("; ", parts)}";
    }
}
