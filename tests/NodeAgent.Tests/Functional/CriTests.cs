using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The container runtime over CRI, against a real private containerd (Debian containerd 1.6 + runc).</summary>
[Collection("containerd")]
public sealed partial class CriTests
{
    private const string Allowed = "docker-registry.svc.toolforge.org/toolforge-bookworm:latest";
    private const string Foreign = "evil.example.org/miner:latest";

    private static CriOptions Cri(PrivateContainerd c) => new() { Endpoint = c.Endpoint, CallTimeout = TimeSpan.FromSeconds(2), ListTimeout = TimeSpan.FromSeconds(3) };

    private static async Task<CheckResult> RunCheck(CriOptions cri, TimeSpan? within = null)
    {
        var state = Support.State();
        var check = new CriRuntimeCheck(Support.Options(cri), state, TimeProvider.System, NullLogger<CriRuntimeCheck>.Instance);
        var sw = Stopwatch.StartNew();
        await check.RunGuardedAsync(CancellationToken.None);
        sw.Stop();
        var limit = within ?? TimeSpan.FromSeconds(15);
        Assert.True(sw.Elapsed < limit, $"the check took {sw.Elapsed} (limit {limit})");
        return state.GetCheck("runtime.containerd")!;
    }

    [Fact]
    public async Task Healthy_RuntimeContainerd_IsOk_WithVersionAndCounts()
    {
        await using var c = await PrivateContainerd.StartAsync([Allowed]);
        var pod = await c.RunPodAsync("tool-a", "web-7d9f");
        await c.RunContainerAsync(pod, "web", Allowed, 52000);
        await c.RunContainerAsync(pod, "sidecar", Allowed, 52000);

        var r = await RunCheck(Cri(c));
        Assert.True(r.State == CheckState.Ok, r.Message);
        Assert.Contains("containerd 1.6", r.Message, StringComparison.Ordinal);
        Assert.Contains("1 ready / 0 not-ready sandboxes, 2 running / 0 exited containers", r.Message, StringComparison.Ordinal);
        Assert.Equal(1, r.Values["sandboxes_ready"]);
        Assert.Equal(2, r.Values["containers_running"]);
    }

    [Fact]
    public async Task Stopped_Killed_Frozen_AndWithoutItsCriPlugin_AreFourDistinctMessages_EachWithinTheTimeout()
    {
        await using var c = await PrivateContainerd.StartAsync();
        var cri = Cri(c);
        var messages = new List<string>();

        await c.StopAsync(); // SIGTERM: containerd removes its socket
        var stopped = await RunCheck(cri, TimeSpan.FromSeconds(5));
        Assert.Equal(CheckState.Failing, stopped.State);
        Assert.Equal($"down: no containerd socket at {c.Socket}: is containerd running?", stopped.Message);
        messages.Add(stopped.Message);

        await c.RestartAsync(criEnabled: true);
        await c.KillAsync(); // SIGKILL: the socket file stays behind
        var killed = await RunCheck(cri, TimeSpan.FromSeconds(5));
        Assert.True(killed.State == CheckState.Failing && killed.Message.Contains("refused the connection", StringComparison.Ordinal)
            && killed.Message.Contains("left its socket behind", StringComparison.Ordinal), $"{killed.State}: {killed.Message}");
        messages.Add(killed.Message);

        await c.RestartAsync(criEnabled: true);
        c.Freeze(); // SIGSTOP: the kernel accepts, nobody answers
        var frozen = await RunCheck(cri, TimeSpan.FromSeconds(2 + 3));
        await c.ThawAsync();
        Assert.True(frozen.State == CheckState.Failing && frozen.Message.StartsWith("hung: containerd at", StringComparison.Ordinal)
            && frozen.Message.Contains("Version did not answer within 2s", StringComparison.Ordinal), $"{frozen.State}: {frozen.Message}");
        messages.Add(frozen.Message);

        await c.RestartAsync(criEnabled: false);
        var notCri = await RunCheck(cri, TimeSpan.FromSeconds(5));
        Assert.True(notCri.State == CheckState.Failing && notCri.Message.StartsWith("not a CRI runtime", StringComparison.Ordinal)
            && notCri.Message.Contains("runtime.v1.RuntimeService", StringComparison.Ordinal), $"{notCri.State}: {notCri.Message}");
        Assert.Equal("notcri", notCri.Details["condition"]);
        messages.Add(notCri.Message);

        Assert.Equal(4, messages.Distinct().Count());
    }

    [Fact]
    public async Task WithoutCni_TheRuntimeIsDegraded_NotDown()
    {
        await using var c = await PrivateContainerd.StartAsync(networkReady: false);
        var r = await RunCheck(Cri(c));
        Assert.Equal(CheckState.Warning, r.State);
        Assert.StartsWith("degraded: NetworkReady=false", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TenantPolicyOverCri_ForeignRegistryAndWrongUid_AreTwoFindings_CompliantAndExemptNone()
    {
        await using var c = await PrivateContainerd.StartAsync([Allowed, Foreign]);
        await using var api = await FakeKubeApiServer.StartAsync();
        using var dir = new TempDir();
        api.Put(FakeKubeApiServer.Namespace("tool-a", new Dictionary<string, string> { ["toolforge.org/run-as-user"] = "52000" }));
        api.Put(FakeKubeApiServer.Namespace("kube-system"));
        var good = await c.RunPodAsync("tool-a", "good");
        await c.RunContainerAsync(good, "main", Allowed, 52000);
        var foreign = await c.RunPodAsync("tool-a", "foreign");
        await c.RunContainerAsync(foreign, "main", Foreign, 52000);
        var wrong = await c.RunPodAsync("tool-a", "wrong");
        await c.RunContainerAsync(wrong, "main", Allowed, 1000);
        var system = await c.RunPodAsync("kube-system", "dns");
        await c.RunContainerAsync(system, "main", Foreign, 0);

        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]) }, "worker-1", NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced, TimeSpan.FromSeconds(10)));
        var state = Support.State();
        var check = new TenantPolicyCheck(Support.Options(new TenantPolicyOptions()), view, state, TimeProvider.System, NullLogger<TenantPolicyCheck>.Instance, [new CriPodContainers(Cri(c))]);
        await check.RunGuardedAsync(CancellationToken.None);
        await view.StopAsync(CancellationToken.None);

        var findings = state.GetFindings().OrderBy(f => f.Kind, StringComparer.Ordinal).ToList();
        Assert.True(findings.Count == 2, string.Join("\n", findings.Select(f => $"{f.Kind} {f.Subject} {f.Message}")) + state.GetCheck(TenantPolicyCheck.Check)?.Message);
        Assert.Equal(("foreign-image", "tool-a/foreign/main"), (findings[0].Kind, findings[0].Subject));
        Assert.Equal(("wrong-user", "tool-a/wrong/main"), (findings[1].Kind, findings[1].Subject));
        Assert.Contains("runs as user \"1000\"", findings[1].Message, StringComparison.Ordinal);
        Assert.StartsWith("sha256:", findings[0].Details["digest"], StringComparison.Ordinal);
        Assert.Contains("4 pod container(s)", state.GetCheck(TenantPolicyCheck.Check)!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckCommand_OnlyRuntimeContainerd_ExitsZeroWhenHealthy_OneWhenStopped_WithJson()
    {
        await using var c = await PrivateContainerd.StartAsync();
        using var dir = new TempDir();
        var config = dir["node-agent.json"];
        await File.WriteAllTextAsync(config, Config(dir, c.Endpoint, "unix:///nonexistent/docker.sock", "cri").ToJsonString());

        var healthy = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", config, "-o", "json", "--only", "runtime.containerd"]);
        Assert.True(healthy.ExitCode == 0, healthy.ToString());
        var check = JsonNode.Parse(healthy.Stdout)!["checks"]!.AsArray().Single()!;
        Assert.Equal("runtime.containerd", (string?)check["name"]);
        Assert.Equal("ok", (string?)check["state"]);
        Assert.Contains("containerd 1.6", (string?)check["message"], StringComparison.Ordinal);

        await c.StopAsync();
        var stopped = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", config, "-o", "json", "--only", "runtime.containerd"]);
        Assert.Equal(1, stopped.ExitCode);
        var down = JsonNode.Parse(stopped.Stdout)!["checks"]!.AsArray().Single()!;
        Assert.Equal("failing", (string?)down["state"]);
        Assert.StartsWith("down: no containerd socket", (string?)down["message"], StringComparison.Ordinal);

        var table = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", config, "--only", "runtime.containerd"]);
        Assert.Equal(1, table.ExitCode);
        Assert.Contains("runtime.containerd  failing", table.Stdout, StringComparison.Ordinal);

        var unknown = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", config, "--only", "no.such.check"]);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no.such.check", unknown.Stderr, StringComparison.Ordinal);

        await File.WriteAllTextAsync(dir["bad.json"], "{ \"NodeAgent\": { \"NoSuchKey\": 1 } }");
        var bad = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", dir["bad.json"]]);
        Assert.Equal(78, bad.ExitCode); // a bad configuration is 78 in every program (README: exit codes)
        Assert.Contains("NoSuchKey", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RuntimeAuto_PicksCriWhenBothSocketsExist_AndBothReportsBoth()
    {
        await using var c = await PrivateContainerd.StartAsync();
        await using var docker = await PrivateDockerd.StartAsync();
        using var dir = new TempDir();
        async Task<List<string>> Checks(string runtime)
        {
            await File.WriteAllTextAsync(dir[runtime + ".json"], Config(dir, c.Endpoint, docker.Endpoint, runtime).ToJsonString());
            var r = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", dir[runtime + ".json"], "-o", "json"]);
            Assert.True(r.ExitCode is 0 or 1, r.ToString());
            return JsonNode.Parse(r.Stdout)!["checks"]!.AsArray().Select(x => (string)x!["name"]!).ToList();
        }

        var auto = await Checks("auto");
        Assert.Contains("runtime.containerd", auto);
        Assert.DoesNotContain("docker.engine", auto);
        var both = await Checks("both");
        Assert.Contains("runtime.containerd", both);
        Assert.Contains("docker.engine", both);
        var dockerOnly = await Checks("docker");
        Assert.DoesNotContain("runtime.containerd", dockerOnly);
        Assert.Contains("docker.engine", dockerOnly);
    }

    private static JsonObject Config(TempDir dir, string cri, string docker, string runtime) => new()
    {
        ["Log"] = new JsonObject { ["Console"] = "plain" },
        ["Metrics"] = new JsonObject { ["Port"] = 0 },
        ["NodeAgent"] = new JsonObject
        {
            ["NodeName"] = "worker-cri.example",
            ["StateDirectory"] = dir["state"],
            ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
            ["Runtime"] = runtime,
            ["Cri"] = new JsonObject { ["Endpoint"] = cri },
            ["Docker"] = new JsonObject { ["Endpoint"] = docker },
            ["Kubernetes"] = new JsonObject { ["Enabled"] = false },
            ["Kubelet"] = new JsonObject { ["Enabled"] = false },
            ["Iptables"] = new JsonObject { ["Enabled"] = false },
            ["Journal"] = new JsonObject { ["Enabled"] = false },
            ["TenantPolicy"] = new JsonObject { ["Enabled"] = false },
            ["StuckProcesses"] = new JsonObject { ["After"] = "00:00:02", ["Interval"] = "00:00:01" },
        },
    };
}

[CollectionDefinition("containerd", DisableParallelization = true)]
public sealed class ContainerdCollection;
