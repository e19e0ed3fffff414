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
/// for its After or longer) that waits on a network mount, mapped to its pod through /proc/PID/cgroup.
/// </summary>
public sealed class ProcStuckPods(StuckProcessEvidence evidence, IOptions<StuckProcessesOptions> processes) : IStuckPods
{
    public IReadOnlySet<string> OnNetworkMounts() =>
        evidence.Last.Stuck.Where(s => s.Process.Mount is not null)
            .Select(s => StuckProcessEvidence.PodUidOf(processes.Value.ProcRoot, s.Process.Pid))
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
}
