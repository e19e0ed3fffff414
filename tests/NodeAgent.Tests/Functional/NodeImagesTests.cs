using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Checks.Images;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// node.images (issue 27): the images a real runtime holds, and which are in use, as the agent's report carries them —
/// over CRI against the private containerd, and from a private dockerd's Engine API.
/// </summary>
[Collection("containerd")]
public sealed class NodeImagesTests
{
    private const string Used = "docker-registry.svc.toolforge.org/toolforge-bookworm:latest";
    private const string Unused = "docker-registry.svc.toolforge.org/toolforge-python311:latest";

    private static NodeImagesCheck Check(Common.Reporting.AgentState state, CriOptions? cri, DockerOptions? docker, NodeImagesCheck.NodePods? pods = null, NodeImagesOptions? options = null) =>
        new(Support.Options(options ?? new NodeImagesOptions()), cri, docker, state, TimeProvider.System, NullLogger<NodeImagesCheck>.Instance, pods);

    private const string NodeName = "tools-k8s-worker-7";

    [Fact]
    public async Task OverCri_WithThePodsOfTheApi_ADigestAPodNames_IsInUse_AndOneTheRuntimeDoesNotHold_GoesInPodDigests()
    {
        await using var c = await PrivateContainerd.StartAsync([Used, Unused]);
        var listed = await Run.ProcessAsync("ctr", ["--address", c.Socket, "-n", "k8s.io", "images", "ls", "name==" + Unused], TimeSpan.FromSeconds(30));
        var manifest = System.Text.RegularExpressions.Regex.Match(listed.Stdout, "sha256:[0-9a-f]{64}").Value;
        var byDigest = "docker-registry.svc.toolforge.org/toolforge-python311@" + manifest;
        Assert.True((await Run.ProcessAsync("ctr", ["--address", c.Socket, "-n", "k8s.io", "images", "tag", Unused, byDigest], TimeSpan.FromSeconds(30))).ExitCode == 0);
        var sandbox = await c.RunPodAsync("tool-a", "web-7d9f"); // the runtime runs a pod: its list is complete only with the pods
        await c.RunContainerAsync(sandbox, "web", Used, 52000);

        await using var api = await FakeKubeApiServer.StartAsync();
        api.Put(FakeKubeApiServer.Node(NodeName));
        using var dir = new TempDir();
        var notHeld = "docker-registry.svc.toolforge.org/toolforge-perl532@sha256:" + new string('e', 64);
        var initNotHeld = "docker-registry.svc.toolforge.org/toolforge-jdk17@sha256:" + new string('d', 64);
        // A running pod whose container the runtime made from the python image (the kubelet's imageID, dockershim's form);
        // a pod pinned by digest whose pull is still to come (no imageID yet); a pod by tag only; a pod whose init
        // container ran an image the runtime no longer holds; a pod whose image names no digest (the API server takes
        // any string); a pod that ended (Succeeded: it never starts again); a pod of another node.
        api.Put(FakeKubeApiServer.PodRunning("tool-a", "web-1", NodeName, ["docker-registry.svc.toolforge.org/toolforge-python311:latest"], ["docker-pullable://" + byDigest]));
        api.Put(FakeKubeApiServer.PodRunning("tool-a", "pending-1", NodeName, [notHeld], []));
        api.Put(FakeKubeApiServer.PodRunning("tool-a", "tagged-1", NodeName, ["docker-registry.svc.toolforge.org/toolforge-bookworm:latest"], [""]));
        var withInit = FakeKubeApiServer.PodRunning("tool-a", "init-1", NodeName, ["docker-registry.svc.toolforge.org/toolforge-bookworm:latest"], []);
        withInit.Spec.InitContainers = [new k8s.Models.V1Container { Name = "setup", Image = "docker-registry.svc.toolforge.org/toolforge-jdk17:latest" }];
        withInit.Status.InitContainerStatuses = [new k8s.Models.V1ContainerStatus { Name = "setup", Image = "x", ImageID = initNotHeld, Ready = true, RestartCount = 0 }];
        api.Put(withInit);
        api.Put(FakeKubeApiServer.PodRunning("tool-a", "malformed-1", NodeName, ["docker-registry.svc.toolforge.org/toolforge-x@sha256:NOT-HEX"], []));
        var ended = FakeKubeApiServer.PodRunning("tool-a", "job-1", NodeName, ["docker-registry.svc.toolforge.org/toolforge-ruby@sha256:" + new string('c', 64)], []);
        ended.Status.Phase = "Succeeded";
        api.Put(ended);
        api.Put(FakeKubeApiServer.PodRunning("tool-a", "elsewhere-1", "tools-k8s-worker-8", ["docker-registry.svc.toolforge.org/toolforge-ruby@sha256:" + new string('f', 64)], []));
        var kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]);
        using var client = new KubeClient(Support.Options(new KubernetesOptions { Kubeconfig = kubeconfig }));
        var pods = new NodeImagesCheck.NodePods(client, kubeconfig, NodeName);

        var state = Support.State();
        await Check(state, new CriOptions { Endpoint = c.Endpoint }, null, pods).RunGuardedAsync(CancellationToken.None);
        var result = state.GetCheck(NodeImagesCheck.Check)!;
        Assert.True(result.State == CheckState.Ok, result.Message);
        var report = state.Snapshot(out _);
        var python = Assert.Single(report.Images, i => i.RepoDigests.Contains(byDigest));
        Assert.True(python.InUse); // (the test's images are one busybox under several names: WithPods' own test shows a pod alone makes one in use)
        Assert.Equal([initNotHeld, notHeld], report.PodDigests);
        Assert.True(report.RunsPods);
        Assert.Equal(report.ImagesAt, report.PodsAt);
        Assert.EndsWith(" in use; 5 pod(s) bound here name 2 digest(s) it does not hold; 1 pod image reference(s) name no sha256 digest (nothing the registry's retention deletes)", result.Message, StringComparison.Ordinal);
        Assert.Equal(5, result.Values["pods"]);

        // Off: the runtime alone — and since it runs pods, a warning that says the retention refuses.
        var off = Support.State();
        await Check(off, new CriOptions { Endpoint = c.Endpoint }, null, pods, new NodeImagesOptions { Pods = false }).RunGuardedAsync(CancellationToken.None);
        Assert.Empty(off.Snapshot(out _).PodDigests);
        Assert.Null(off.Snapshot(out _).PodsAt);
        Assert.Equal(CheckState.Warning, off.GetCheck(NodeImagesCheck.Check)!.State);
        Assert.EndsWith(" in use; the pods bound here are not read (NodeAgent:Images:Pods is off); the registry's retention refuses while they are not listed", off.GetCheck(NodeImagesCheck.Check)!.Message, StringComparison.Ordinal);

        // The API down: the runtime's list still goes (a new images_at), with the pods' digests of the last listing and
        // its own time, which the coordinator judges.
        var before = state.Snapshot(out _);
        api.Down = true;
        await Check(state, new CriOptions { Endpoint = c.Endpoint }, null, pods).RunGuardedAsync(CancellationToken.None);
        var down = state.GetCheck(NodeImagesCheck.Check)!;
        Assert.Equal(CheckState.Warning, down.State);
        Assert.Contains($"; cannot list the pods bound to {NodeName}: ", down.Message, StringComparison.Ordinal);
        Assert.Contains("; the digests pods named at ", down.Message, StringComparison.Ordinal);
        var after = state.Snapshot(out _);
        Assert.True(after.ImagesAt.ToDateTimeOffset() >= before.ImagesAt.ToDateTimeOffset());
        Assert.Equal(before.PodsAt, after.PodsAt);
        Assert.Equal([initNotHeld, notHeld], after.PodDigests);
        api.Down = false;

        // More pods than NodeAgent:Images:MaxPods (the ended one not counted): the same, naming the key.
        await Check(state, new CriOptions { Endpoint = c.Endpoint }, null, pods, new NodeImagesOptions { MaxPods = 4 }).RunGuardedAsync(CancellationToken.None);
        Assert.Contains("more than 4 pods on tools-k8s-worker-7 (NodeAgent:Images:MaxPods)", state.GetCheck(NodeImagesCheck.Check)!.Message, StringComparison.Ordinal);
        await Check(state, new CriOptions { Endpoint = c.Endpoint }, null, pods, new NodeImagesOptions { MaxPods = 5 }).RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Ok, state.GetCheck(NodeImagesCheck.Check)!.State);

        // A node name the API has no Node of (the certificate's FQDN, the Node's short name): no pod is listed, and
        // that is said, not taken for "no pods".
        var misnamed = Support.State();
        await Check(misnamed, new CriOptions { Endpoint = c.Endpoint }, null, pods with { Node = NodeName + ".eqiad1.wikimedia.cloud" }).RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Warning, misnamed.GetCheck(NodeImagesCheck.Check)!.State);
        Assert.Contains("the Kubernetes API has no Node of that name (NodeAgent:NodeName must be the Node's name)", misnamed.GetCheck(NodeImagesCheck.Check)!.Message, StringComparison.Ordinal);
        Assert.Null(misnamed.Snapshot(out _).PodsAt);

        // No kubeconfig on a host that runs pods: a warning (the retention refuses); on a host that runs none, the runtime alone.
        var bare = Support.State();
        await Check(bare, new CriOptions { Endpoint = c.Endpoint }, null, pods with { Kubeconfig = dir["absent"] }).RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Warning, bare.GetCheck(NodeImagesCheck.Check)!.State);
        Assert.Contains($"the pods bound here are not read (no kubeconfig at {dir["absent"]})", bare.GetCheck(NodeImagesCheck.Check)!.Message, StringComparison.Ordinal);
        await using var idle = await PrivateContainerd.StartAsync([Used]);
        var builderHost = Support.State();
        await Check(builderHost, new CriOptions { Endpoint = idle.Endpoint }, null, pods with { Kubeconfig = dir["absent"] }).RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Ok, builderHost.GetCheck(NodeImagesCheck.Check)!.State);
        Assert.False(builderHost.Snapshot(out _).RunsPods);
    }

    [Fact]
    public void PodReferences_InTheCoordinatorsForm_ASchemeDropped_AnotherAlgorithmCountedAndSkipped()
    {
        var id = "sha256:" + new string('a', 64);
        var held = "docker-registry.svc.toolforge.org/toolforge-x@sha256:" + new string('b', 64);
        var listing = new NodeImagesCheck.Listing("containerd", [new NodeImage { Id = id, RepoDigests = { held } }, new NodeImage { Id = "sha256:" + new string('9', 64) }], 0);
        var pod = new KubePod
        {
            Spec = new KubePodSpec { Containers = [new() { Image = "Mirror.Example/X@sha256:" + new string('c', 64) }, new() { Image = "registry/x:latest" }], InitContainers = [new() { Image = "r/init@sha512:" + new string('d', 128) }] },
            Status = new KubePodStatus { ContainerStatuses = [new() { ImageID = "docker-pullable://mirror.example/x@sha256:" + new string('b', 64) }, new() { ImageID = "" }], EphemeralContainerStatuses = [new() { ImageID = id }] },
        };
        Assert.Equal(4, NodeImagesCheck.PodReferences(pod).Count());
        var withPods = NodeImagesCheck.WithPods(listing, [pod]);
        Assert.True(withPods.Images[0].InUse); // named by its repo digest under another registry's name, and by its id
        Assert.False(withPods.Images[1].InUse);
        Assert.Equal(["sha256:" + new string('c', 64)], withPods.PodDigests); // a name in no form keeps its digest
        Assert.Equal(0, withPods.LeftOut); // the list still goes
        Assert.Equal(1, withPods.Unnamed); // sha512: nothing the retention deletes
        Assert.Equal(1, withPods.Pods);
        Assert.False(listing.Images[0].InUse); // the runtime's listing itself untouched
        Assert.Null(NodeImagesCheck.Entry("docker://not a reference"));
        Assert.Equal(id, NodeImagesCheck.Entry("docker://" + id));
        Assert.Equal(id, NodeImagesCheck.Entry(new string('a', 64))); // a bare 64-hex id
    }

    [Fact]
    public async Task OverCri_EveryImageIsListedWithItsDigests_AndTheOneAContainerWasMadeFrom_IsInUse()
    {
        await using var c = await PrivateContainerd.StartAsync([Used, Unused]);
        var pod = await c.RunPodAsync("tool-a", "web-7d9f");
        await c.RunContainerAsync(pod, "web", Used, 52000);

        // As a pull by digest records it: the image also known by repository@manifest-digest (the name a registry's
        // retention compares with). containerd's own CLI tells the manifest digest and adds the reference.
        var listed = await Run.ProcessAsync("ctr", ["--address", c.Socket, "-n", "k8s.io", "images", "ls", "name==" + Used], TimeSpan.FromSeconds(30));
        var manifest = System.Text.RegularExpressions.Regex.Match(listed.Stdout, "sha256:[0-9a-f]{64}").Value;
        Assert.True(manifest.Length > 0, listed.ToString());
        var byDigest = "docker-registry.svc.toolforge.org/toolforge-bookworm@" + manifest;
        var tag = await Run.ProcessAsync("ctr", ["--address", c.Socket, "-n", "k8s.io", "images", "tag", Used, byDigest], TimeSpan.FromSeconds(30));
        Assert.True(tag.ExitCode == 0, tag.ToString());
        var state = Support.State();
        Assert.Null(state.Snapshot(out _).ImagesAt); // before the first listing: no images_at, the coordinator keeps its own

        await Check(state, new CriOptions { Endpoint = c.Endpoint }, null).RunGuardedAsync(CancellationToken.None);
        var result = state.GetCheck(NodeImagesCheck.Check)!;
        // The images are listed and sent; the runtime runs a pod whose list no API gave here: a warning saying so.
        Assert.True(result.State == CheckState.Warning, result.Message);
        var report = state.Snapshot(out _);
        Assert.NotNull(report.ImagesAt);
        Assert.True(report.RunsPods);

        // What containerd itself says (its own CLI, an independent client): every image id, and the one in use.
        var ctr = await Run.ProcessAsync("ctr", ["--address", c.Socket, "-n", "k8s.io", "images", "ls"], TimeSpan.FromSeconds(30));
        Assert.True(ctr.ExitCode == 0, ctr.ToString());
        Assert.Equal(report.Images.Count, report.Images.Select(i => i.Id).Distinct().Count());
        var inUse = Assert.Single(report.Images, i => i.InUse);
        Assert.Contains(byDigest, inUse.RepoDigests); // the image the container was made from, by its manifest digest
        Assert.Equal($"{report.Images.Count} images in containerd, 1 in use; the pods bound here are not read (NodeAgent:Kubernetes does not read the API); the registry's retention refuses while they are not listed", result.Message);
        Assert.All(report.Images, i => Assert.Matches("^sha256:[0-9a-f]{64}$", i.Id));
        Assert.All(report.Images.SelectMany(i => i.RepoDigests), d => Assert.Contains(d.Split('@')[1], ctr.Stdout, StringComparison.Ordinal));
        Assert.Equal(1, result.Values["in_use"]);
    }

    [Fact]
    public async Task TheRuntimeDown_IsUnknown_AndTheLastListKeepsItsTime()
    {
        var state = Support.State();
        var earlier = new NodeImage { Id = "sha256:" + new string('a', 64), InUse = true };
        var at = DateTimeOffset.UtcNow.AddMinutes(-5);
        state.SetImages([earlier], at); // the last listing, five minutes ago
        using var dir = new TempDir();
        await Check(state, new CriOptions { Endpoint = "unix://" + dir["absent.sock"] }, null).RunGuardedAsync(CancellationToken.None);
        var result = state.GetCheck(NodeImagesCheck.Check)!;
        Assert.Equal(CheckState.Unknown, result.State);
        Assert.Contains("cannot list the images of containerd at unix://", result.Message, StringComparison.Ordinal);
        var report = state.Snapshot(out _); // the report still carries the last list, with its own time
        Assert.Equal([earlier], report.Images);
        Assert.Equal(Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(at), report.ImagesAt);
    }

    [Fact]
    public async Task FromDocker_ImagesAndContainersStoppedToo_AreListed()
    {
        await using var docker = await PrivateDockerd.StartAsync();
        using var dir = new TempDir();
        File.Copy("/bin/busybox", dir["busybox"]);
        await File.WriteAllTextAsync(dir["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox\n");
        await docker.DockerAsync($"build -q -t {Used} {dir.Path}");
        await File.WriteAllTextAsync(dir["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox2\n");
        await docker.DockerAsync($"build -q -t {Unused} {dir.Path}");
        await docker.DockerAsync($"create --network none --name made {Used} /bin/busybox true"); // never started: still in use

        var state = Support.State();
        await Check(state, null, new DockerOptions { Endpoint = docker.Endpoint }).RunGuardedAsync(CancellationToken.None);
        var result = state.GetCheck(NodeImagesCheck.Check)!;
        Assert.True(result.State == CheckState.Ok, result.Message);
        var report = state.Snapshot(out _);
        var usedId = (await docker.DockerAsync($"image inspect --format {{{{.Id}}}} {Used}")).Trim();
        var unusedId = (await docker.DockerAsync($"image inspect --format {{{{.Id}}}} {Unused}")).Trim();
        Assert.True(report.Images.Single(i => i.Id == usedId).InUse);
        Assert.False(report.Images.Single(i => i.Id == unusedId).InUse);
        Assert.Equal("2 images in docker, 1 in use", result.Message);
    }

    [Fact]
    public void Shape_KeepsOnlyTheFormsTheCoordinatorTakes_AndSaysHowManyWereLeftOut()
    {
        var id = "sha256:" + new string('a', 64);
        var digest = "docker-registry.svc.toolforge.org/toolforge-bookworm@sha256:" + new string('b', 64);
        var bare = new string('f', 64); // an id as some runtimes give it, without its algorithm
        var listing = NodeImagesCheck.Shape("containerd",
            [(id, [digest, digest, "Evil/Name@sha256:" + new string('c', 64), "x@md5:1"]), ("not-an-id", []), ("sha256:" + new string('d', 64), Enumerable.Range(0, 20).Select(n => $"r{n}/x@sha256:" + new string((char)('a' + (n % 6)), 64))),
             (bare, ["docker-registry.svc.toolforge.org/toolforge-python311@sha256:" + new string('9', 64)])],
            new HashSet<string> { id, "docker-registry.svc.toolforge.org/toolforge-python311@sha256:" + new string('9', 64) });
        Assert.Equal(3, listing.Images.Count);
        Assert.Equal([digest, "sha256:" + new string('c', 64)], listing.Images[0].RepoDigests); // a name in no form keeps its digest
        Assert.True(listing.Images[0].InUse);
        Assert.Equal(16, listing.Images[1].RepoDigests.Count);
        Assert.Equal("sha256:" + bare, listing.Images[2].Id);
        Assert.True(listing.Images[2].InUse); // a container names it by its repo digest
        Assert.Equal(1 + 1 + 4, listing.LeftOut); // md5, the id in no form, four digests past 16: the list is not sent
    }
}
