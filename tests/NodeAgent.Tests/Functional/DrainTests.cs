using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using k8s.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Hosting;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class DrainTests
{
    [Fact]
    public async Task APodWithAProcessInDOnAFuseSshfsMount_AsTheRealStuckProcessCheckSeesIt_IsStuck()
    {
        // The real evidence path: a process of the pod (its cgroup named as the kubelet names a pod's) frozen in D with
        // its cwd on a fuse.sshfs mount; node.stuck-processes scans /proc; ProcStuckPods maps it to the pod's UID.
        await using var mount = await SshfsMount.StartAsync(_dir["sshfs"]);
        Directory.CreateDirectory(Path.Combine(_dir["sshfs"], "export", "tool-home"));
        var onMount = FakeKubeApiServer.Pod("tool-a", "nfs-reader", Node, grace: 30);
        var offMount = FakeKubeApiServer.Pod("tool-b", "local-reader", "tools-k8s-worker-nfs-4", grace: 30);
        _api.Put(onMount);
        _api.Put(offMount);
        _api.StayTerminating("tool-a", "nfs-reader");
        await using var inD = await FrozenProcess.StartAsync(workingDirectory: Path.Combine(mount.Point, "tool-home"), nested: $"kubepods/besteffort/pod{onMount.Metadata.Uid}");
        await using var inDOffTheMount = await FrozenProcess.StartAsync(nested: $"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{offMount.Metadata.Uid.Replace('-', '_')}.slice");

        var evidence = new StuckProcessEvidence();
        var checkTime = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var check = new StuckProcessCheck(Support.Options(new StuckProcessesOptions { After = TimeSpan.FromMinutes(1) }), Support.State(checkTime), checkTime, NullLogger<StuckProcessCheck>.Instance, evidence);
        await check.RunGuardedAsync(CancellationToken.None);
        checkTime.Advance(TimeSpan.FromMinutes(1));
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Contains(evidence.Last.Stuck, s => s.Process.Pid == inD.Pid && s.Process.Mount == $"{mount.Point} (fuse.sshfs)");
        Assert.Contains(evidence.Last.Stuck, s => s.Process.Pid == inDOffTheMount.Pid && s.Process.Mount is null);
        Assert.Equal(onMount.Metadata.Uid, StuckProcessEvidence.PodUidOf("/proc", inD.Pid));
        Assert.Equal(offMount.Metadata.Uid, StuckProcessEvidence.PodUidOf("/proc", inDOffTheMount.Pid));

        var stuckPods = new ProcStuckPods(evidence, Support.Options(new StuckProcessesOptions()), checkTime);
        Assert.Equal([onMount.Metadata.Uid], stuckPods.OnNetworkMounts()); // in D, but not on a network mount: not counted

        // A scan more than three check intervals old is no evidence (the check stopped): nothing is stuck by it.
        var staleTime = new FakeTimeProvider(checkTime.GetUtcNow() + TimeSpan.FromSeconds(91));
        Assert.Empty(new ProcStuckPods(evidence, Support.Options(new StuckProcessesOptions()), staleTime).OnNetworkMounts());
        Assert.Single(new ProcStuckPods(evidence, Support.Options(new StuckProcessesOptions()), new FakeTimeProvider(checkTime.GetUtcNow() + TimeSpan.FromSeconds(90))).OnNetworkMounts());

        var (drainer, time, _) = Make(stuckPods, d => d.Timeout = TimeSpan.FromMinutes(10));
        var outcome = await RunAsync(drainer, time, Poll);
        Assert.Equal(DrainEnd.Stuck, outcome.End);
        Assert.Contains("stuck with processes in D on a network mount (tool-a/nfs-reader)", outcome.Message, StringComparison.Ordinal);
    }
}
