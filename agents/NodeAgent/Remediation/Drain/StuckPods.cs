using Microsoft.Extensions.Options;
using Toolforge.Agents.NodeAgent.Checks.Processes;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>Pods (by UID) with processes this agent sees stuck in D on a network mount.</summary>
public interface IStuckPods
{
    IReadOnlySet<string> OnNetworkMounts();
}

/// <summary>
/// From node.stuck-processes' last scan (<see cref="StuckProcessEvidence"/>): each process it counts as stuck (in D
/// for its After or longer) that waits on a network mount, mapped to its pod through /proc/PID/cgroup. A scan older
/// than three of the check's intervals (the check stopped, or is off) is no evidence: nothing is stuck by it.
/// </summary>
public sealed class ProcStuckPods(StuckProcessEvidence evidence, IOptions<StuckProcessesOptions> processes, TimeProvider time) : IStuckPods
{
    public IReadOnlySet<string> OnNetworkMounts()
    {
        var last = evidence.Last;
        if (time.GetUtcNow() - last.At > 3 * processes.Value.Interval)
        {
            return new HashSet<string>(StringComparer.Ordinal);
        }

        return last.Stuck.Where(s => s.Process.Mount is not null)
            .Select(s => StuckProcessEvidence.PodUidOf(processes.Value.ProcRoot, s.Process.Pid))
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
    }
}
