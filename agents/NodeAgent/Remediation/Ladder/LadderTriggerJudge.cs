using System.Globalization;

namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>
/// What the triggers read this tick: for how long the oldest process in D on a network mount has been so (null: none),
/// since when kubelet's and the CRI runtime's checks fail (null: not failing), when the guarded restart last restarted
/// kubelet, and whether reboot-notifier's file exists.
/// </summary>
public sealed record TriggerView(
    DateTimeOffset Now,
    TimeSpan? StuckOnNetworkMountFor,
    DateTimeOffset? KubeletFailingSince,
    DateTimeOffset? KubeletRestartedAt,
    DateTimeOffset? RuntimeFailingSince,
    bool RebootRequired);

/// <summary>A trigger that fired: its name (names the incident), the unit to restart first, the first rung, and why (for the Event).</summary>
public sealed record TriggerHit(string Name, string? Unit, Rung FirstRung, string Why);

/// <summary>The triggers (each off unless enabled), pure: the first that fires opens the incident.</summary>
public static class LadderTriggerJudge
{
    public static TriggerHit? Evaluate(TriggerView v, LadderTriggers t, string kubeletUnit, string runtimeUnit)
    {
        if (t.StuckProcesses.Enabled && v.StuckOnNetworkMountFor is { } stuck && stuck >= t.StuckProcesses.After)
        {
            return new TriggerHit("stuck-processes", null, Rung.Drain, $"processes in D on a network mount for {Minutes(stuck)} (at least {Minutes(t.StuckProcesses.After)})");
        }

        if (t.Kubelet.Enabled && v.KubeletFailingSince is { } failing)
        {
            // Restarted by the guarded restart during this failure: still failing After that restart -> straight to the drain.
            if (v.KubeletRestartedAt is { } restarted && restarted >= failing)
            {
                if (v.Now - restarted >= t.Kubelet.After)
                {
                    return new TriggerHit("kubelet", kubeletUnit, Rung.Drain, $"{kubeletUnit} still unhealthy {Minutes(v.Now - restarted)} after the guarded restart");
                }
            }
            else if (v.Now - failing >= t.Kubelet.After)
            {
                return new TriggerHit("kubelet", kubeletUnit, Rung.Restart, $"{kubeletUnit}'s checks failing for {Minutes(v.Now - failing)}");
            }
        }

        if (t.Runtime.Enabled && v.RuntimeFailingSince is { } down && v.Now - down >= t.Runtime.After)
        {
            return new TriggerHit("runtime", runtimeUnit, Rung.Restart, $"{runtimeUnit}'s checks failing for {Minutes(v.Now - down)}");
        }

        if (t.RebootRequired.Enabled && v.RebootRequired)
        {
            return new TriggerHit("reboot-required", null, Rung.Drain, $"{t.RebootRequired.Path} exists (a reboot is required)");
        }

        return null;
    }

    /// <summary>What holds new incidents: the Node's label or annotation <paramref name="key"/>, or a lock file that exists (puppet disabled). Null: nothing.</summary>
    public static string? Held(IReadOnlyDictionary<string, string>? labels, IReadOnlyDictionary<string, string>? annotations, string key, string? lockFileFound)
    {
        if (labels?.ContainsKey(key) == true)
        {
            return $"the Node has the label {key}";
        }

        if (annotations?.ContainsKey(key) == true)
        {
            return $"the Node has the annotation {key}";
        }

        return lockFileFound is null ? null : $"{lockFileFound} exists (puppet's agent is disabled: someone is working on this node)";
    }

    private static string Minutes(TimeSpan t) => $"{t.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture)} min";
}
