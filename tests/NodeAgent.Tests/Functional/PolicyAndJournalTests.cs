using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class PolicyAndJournalTests
{
    [Fact]
    public async Task TenantPolicy_ForeignImageAndWrongUser_AreTwoFindings_CompliantContainerNone()
    {
        await using var docker = await PrivateDockerd.StartAsync();
        await using var api = await FakeKubeApiServer.StartAsync();
        using var dir = new TempDir();
        File.Copy("/bin/busybox", dir["busybox"]);
        await File.WriteAllTextAsync(dir["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n");
        await docker.DockerAsync($"build -q -t docker-registry.svc.toolforge.org/toolforge-bookworm:latest {dir.Path}");
        await docker.DockerAsync("tag docker-registry.svc.toolforge.org/toolforge-bookworm:latest evil.example.org/miner:latest");
        api.Put(FakeKubeApiServer.Namespace("tool-a", new Dictionary<string, string> { ["toolforge.org/run-as-user"] = "52000" }));
        api.Put(FakeKubeApiServer.Namespace("kube-system"));

        async Task Start(string name, string image, string user, string ns = "tool-a") => await docker.DockerAsync(
            $"run -d --network none --name {name} --user {user} --label io.kubernetes.pod.namespace={ns} --label io.kubernetes.pod.name={name}-pod --label io.kubernetes.container.name=main {image} sleep 300");
        await Start("good", "docker-registry.svc.toolforge.org/toolforge-bookworm:latest", "52000:52000");
        await Start("foreign", "evil.example.org/miner:latest", "52000");
        await Start("root", "docker-registry.svc.toolforge.org/toolforge-bookworm:latest", "0");
        await Start("system", "evil.example.org/miner:latest", "0", ns: "kube-system");

        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]) }, "worker-1", NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced, TimeSpan.FromSeconds(10)));
        var state = Support.State();
        var check = new TenantPolicyCheck(Support.Options(new TenantPolicyOptions()), view, state, TimeProvider.System, NullLogger<TenantPolicyCheck>.Instance,
            [new DockerPodContainers(new DockerOptions { Endpoint = docker.Endpoint })]);
        await check.RunGuardedAsync(CancellationToken.None);

        var findings = state.GetFindings().OrderBy(f => f.Kind, StringComparer.Ordinal).ToList();
        Assert.True(findings.Count == 2, string.Join("\n", findings.Select(f => $"{f.Kind} {f.Subject} {f.Message}")) + state.GetCheck(TenantPolicyCheck.Check)?.Message);
        Assert.Equal(("foreign-image", "tool-a/foreign-pod/main"), (findings[0].Kind, findings[0].Subject));
        Assert.Equal(("wrong-user", "tool-a/root-pod/main"), (findings[1].Kind, findings[1].Subject));
        Assert.Equal(CheckState.Warning, state.GetCheck(TenantPolicyCheck.Check)!.State);
        await view.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task JournalFile_WithOomHungTaskAndRecovery_GivesTheFindings_AndTheConditionClears()
    {
        using var dir = new TempDir();
        var now = DateTimeOffset.UtcNow;
        var entries = new List<Dictionary<string, string>>
        {
            JournalFiles.Entry(now.AddMinutes(-9), "worker-1", "kernel", "Memory cgroup out of memory: Killed process 4242 (python3) total-vm:1048576kB", 3, kernel: true, seqnum: 1),
            JournalFiles.Entry(now.AddMinutes(-8), "worker-1", "kernel", "INFO: task jbd2/sda1-8:301 blocked for more than 120 seconds.", 3, kernel: true, seqnum: 2),
            JournalFiles.Entry(now.AddMinutes(-7), "worker-1", "kubelet", "E1125 container runtime is down: Cannot connect to the Docker daemon", 3, unit: "kubelet.service", seqnum: 3),
            JournalFiles.Entry(now.AddMinutes(-6), "worker-1", "kubelet", "I1125 some unrelated kubelet chatter", 6, unit: "kubelet.service", seqnum: 4),
            JournalFiles.Entry(now.AddMinutes(-5), "worker-1", "sshd", "PLEG is not healthy (from a unit the rules do not watch)", 6, unit: "ssh.service", seqnum: 5),
        };
        await JournalFiles.WriteAsync(dir["down.journal"], entries);

        var state = Support.State();
        var service = new JournalRulesService(Support.Options(new JournalOptions { Files = [dir["down.journal"]] }), Support.Options(new NodeOptions { StateDirectory = dir["state"] }), state, TimeProvider.System, NullLogger<JournalRulesService>.Instance);
        await service.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => state.GetCheck("journal.runtime-down")?.State == CheckState.Failing, TimeSpan.FromSeconds(10)));
        Assert.Equal(CheckState.Warning, state.GetCheck("journal.oom-kill")!.State);   // 1 of threshold 5
        Assert.Equal(CheckState.Failing, state.GetCheck("journal.hung-task")!.State);
        Assert.Equal(CheckState.Ok, state.GetCheck("journal.pleg-unhealthy")!.State);  // ssh.service is not watched
        Assert.Equal(["hung-task", "oom-kill", "runtime-down"], state.GetFindings().Select(f => f.Subject).Order(StringComparer.Ordinal));
        await service.StopAsync(CancellationToken.None);

        // The runtime recovers (a newer journal file), read from the saved cursor: the condition clears itself.
        entries.Add(JournalFiles.Entry(now.AddMinutes(-2), "worker-1", "kubelet", "I1125 Container runtime is ready again", 6, unit: "kubelet.service", seqnum: 6));
        await JournalFiles.WriteAsync(dir["up.journal"], entries);
        state = Support.State();
        service = new JournalRulesService(Support.Options(new JournalOptions { Files = [dir["up.journal"]] }), Support.Options(new NodeOptions { StateDirectory = dir["state"] }), state, TimeProvider.System, NullLogger<JournalRulesService>.Instance);
        await service.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => state.GetCheck("journal.runtime-down") is not null, TimeSpan.FromSeconds(10)));
        await Task.Delay(500);
        service.Publish();
        // The rule state saved by the first run is restored; the recovery read from the new file clears it.
        Assert.Equal(CheckState.Ok, state.GetCheck("journal.runtime-down")!.State);
        Assert.Contains("recovered", state.GetCheck("journal.runtime-down")!.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(state.GetFindings(), f => f.Subject == "runtime-down");
        await service.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task BadRegexInARule_IsAStartupErrorNamingTheRule()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["node-agent.json"], """
            { "NodeAgent": { "Kubernetes": { "Enabled": false },
              "Journal": { "Rules": [ { "Name": "broken", "Type": "event", "Pattern": "oom(kill" } ] } } }
            """);
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]]);
        Assert.Equal(78, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("NodeAgent:Journal:Rules:0:Pattern: rule \"broken\" has an invalid regular expression", line, StringComparison.Ordinal);
    }
}
