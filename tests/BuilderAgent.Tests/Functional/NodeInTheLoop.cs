using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Images;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// A worker for the registry's retention to protect (issue 27): a private containerd whose images are named by
/// repository@digest (as a pull by digest leaves them; each held digest on an image of its own, from a pool), the pods a
/// fake API server binds to the node, and the node-agent's own node.images check listing both into an agent state whose
/// snapshot is the report the coordinator gets.
/// </summary>
internal sealed class NodeInTheLoop : IAsyncDisposable
{
    public const string Name = "tools-k8s-worker-1";
    private const int Pool = 60;

    private readonly PrivateContainerd _containerd;
    private readonly FakeKubeApiServer _api;
    private readonly TempDir _dir;
    private readonly KubeClient _client;
    private readonly AgentState _state = new(TimeProvider.System, NullLogger<AgentState>.Instance);
    private readonly NodeImagesCheck _check;
    private readonly Dictionary<string, int> _tagged = new(StringComparer.Ordinal); // held reference -> pool image
    private readonly List<string> _pods = [];

    private NodeInTheLoop(PrivateContainerd containerd, FakeKubeApiServer api, TempDir dir)
    {
        _containerd = containerd;
        _api = api;
        _dir = dir;
        var kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]);
        _client = new KubeClient(Microsoft.Extensions.Options.Options.Create(new KubernetesOptions { Kubeconfig = kubeconfig }));
        _check = new NodeImagesCheck(Microsoft.Extensions.Options.Options.Create(new NodeImagesOptions()), new CriOptions { Endpoint = containerd.Endpoint }, null, _state,
            TimeProvider.System, NullLogger<NodeImagesCheck>.Instance, new NodeImagesCheck.NodePods(_client, kubeconfig, Name));
    }

    private static string PoolImage(int n) => $"docker-registry.svc.toolforge.org/pool:{n}";

    public static async Task<NodeInTheLoop> StartAsync()
    {
        var dir = new TempDir("node-loop");
        var containerd = await PrivateContainerd.StartAsync();
        var api = await FakeKubeApiServer.StartAsync();
        api.Put(FakeKubeApiServer.Node(Name));
        var tar = dir["pool.tar"];
        OciImage.WriteMany(tar, [.. Enumerable.Range(0, Pool).Select(PoolImage)]);
        var node = new NodeInTheLoop(containerd, api, dir);
        await node.CtrAsync("images", "import", tar);
        return node;
    }

    private async Task CtrAsync(params string[] args)
    {
        var r = await Run.ProcessAsync("ctr", ["--address", _containerd.Socket, "-n", "k8s.io", .. args], TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    /// <summary>The runtime now holds these references (each on a pool image no other held reference is on).</summary>
    public async Task TagAsync(IEnumerable<string> references)
    {
        foreach (var reference in references)
        {
            var free = Enumerable.Range(0, Pool).First(n => !_tagged.ContainsValue(n));
            await CtrAsync("images", "tag", PoolImage(free), reference);
            _tagged[reference] = free;
        }
    }

    /// <summary>The runtime no longer holds these references.</summary>
    public async Task UntagAsync(IReadOnlyCollection<string> references)
    {
        if (references.Count > 0)
        {
            await CtrAsync(["images", "rm", .. references]);
            foreach (var r in references)
            {
                _tagged.Remove(r);
            }
        }
    }

    /// <summary>The pods bound to the node from now on: each of <paramref name="running"/> runs (its imageID), each of <paramref name="pending"/> is pinned by digest, its pull to come.</summary>
    public void SetPods(IEnumerable<string> running, IEnumerable<string> pending)
    {
        foreach (var name in _pods)
        {
            _api.Delete("pods", "tool-loop", name);
        }

        _pods.Clear();
        // A running pod names its image by tag in the spec (what keeps it is its status: the imageID the runtime resolved,
        // in dockershim's form or containerd's).
        foreach (var (reference, n) in running.Select((r, n) => (r, n)))
        {
            var byTag = reference[..reference.LastIndexOf('@')] + ":testing";
            _api.Put(FakeKubeApiServer.PodRunning("tool-loop", $"running-{n}", Name, [byTag], [(n % 2 == 0 ? "docker-pullable://" : string.Empty) + reference]));
            _pods.Add($"running-{n}");
        }

        foreach (var (reference, n) in pending.Select((r, n) => (r, n)))
        {
            _api.Put(FakeKubeApiServer.PodRunning("tool-loop", $"pending-{n}", Name, [reference], []));
            _pods.Add($"pending-{n}");
        }
    }

    /// <summary>
    /// Runs node.images until its listing shows exactly <paramref name="runtime"/> of the references the test tagged
    /// (containerd's image cache follows its store by events: a positive sign, at most 20 s), and returns the report
    /// it makes — every pod-named reference in it, held or as a pod digest.
    /// </summary>
    public async Task<ReportRequest> ListAsync(IReadOnlySet<string> runtime, IReadOnlySet<string> podNamed)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            await _check.RunGuardedAsync(CancellationToken.None);
            var result = _state.GetCheck(NodeImagesCheck.Check)!;
            Assert.True(result.State == CheckState.Ok, result.Message);
            var report = _state.Snapshot(out _);
            var listed = report.Images.SelectMany(i => i.RepoDigests).Where(d => !d.StartsWith("docker-registry.svc.toolforge.org/", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
            if (listed.SetEquals(runtime))
            {
                var named = listed.Concat(report.PodDigests).ToHashSet(StringComparer.Ordinal);
                Assert.True(podNamed.IsSubsetOf(named), "a pod's digest is missing from the report");
                Assert.All(report.Images.Where(i => i.RepoDigests.Any(podNamed.Contains)), i => Assert.True(i.InUse)); // a pod names it: in use
                report.Node = Name;
                report.Agent = AgentKind.Node;
                report.AgentVersion = "1.0.0";
                return report;
            }

            Assert.True(DateTime.UtcNow < deadline, $"containerd lists {string.Join(", ", listed.Order())}; the test tagged {string.Join(", ", runtime.Order())}");
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _api.DisposeAsync();
        await _containerd.DisposeAsync();
        _dir.Dispose();
    }
}
