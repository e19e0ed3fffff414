using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The fake API server's pods, budgets, evictions and Node patches, driven by the official Kubernetes C# client (a
/// client written against the real kube-apiserver, not by us), so the fake speaks the real wire format; the answers
/// are compared with kube-apiserver's own words (pkg/registry/core/pod/storage/eviction.go, apimachinery errors.go).
/// </summary>
public sealed class FakeApiServerWorkloadTests : IAsyncLifetime
{
    private const string Node = "tools-k8s-worker-nfs-7";
    private readonly TempDir _dir = new();
    private FakeKubeApiServer _api = null!;
    private k8s.Kubernetes _k8s = null!;

    public async Task InitializeAsync()
    {
        _api = await FakeKubeApiServer.StartAsync();
        _api.Put(FakeKubeApiServer.Node(Node));
        _k8s = new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(_api.WriteKubeconfig(_dir["kubeconfig"])));
    }

    public async Task DisposeAsync()
    {
        _k8s.Dispose();
        await _api.DisposeAsync();
        _dir.Dispose();
    }

    private static Dictionary<string, string> App(string app) => new() { ["app"] = app };

    private static async Task<(HttpStatusCode Code, JsonObject Status)> Refused(Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<HttpOperationException>(call);
        return (ex.Response.StatusCode, JsonNode.Parse(ex.Response.Content)!.AsObject());
    }

    private Task<V1Eviction> Evict(string ns, string name, bool dryRun = false) => _k8s.CoreV1.CreateNamespacedPodEvictionAsync(
        new V1Eviction { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns }, DeleteOptions = dryRun ? new V1DeleteOptions { DryRun = ["All"] } : null }, name, ns);

    [Fact]
    public async Task PodsAreListedByNodeName_PageByPage()
    {
        for (var i = 0; i < 5; i++)
        {
            _api.Put(FakeKubeApiServer.Pod("tool-a", $"web-{i}", Node));
        }

        _api.Put(FakeKubeApiServer.Pod("tool-a", "elsewhere", "tools-k8s-worker-nfs-8"));
        var names = new List<string>();
        string? next = null;
        var pages = 0;
        do
        {
            var page = await _k8s.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}", limit: 2, continueParameter: next);
            names.AddRange(page.Items.Select(p => p.Metadata.Name));
            next = page.Metadata.ContinueProperty;
            pages++;
        }
        while (!string.IsNullOrEmpty(next));

        Assert.Equal(["web-0", "web-1", "web-2", "web-3", "web-4"], names);
        Assert.Equal(3, pages);
        var (code, _) = await Refused(() => _k8s.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: "status.phase=Running"));
        Assert.Equal(HttpStatusCode.BadRequest, code);
    }

    [Fact]
    public async Task AGracefulDelete_LeavesThePodTerminating_UntilItsKubeletConfirms_AndASecondDeleteOnlyShortensIt()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "stuck", Node, grace: 30));
        _api.StayTerminating("tool-a", "stuck");
        var before = DateTimeOffset.UtcNow;
        await _k8s.CoreV1.DeleteNamespacedPodAsync("stuck", "tool-a");
        var pod = _api.GetPod("tool-a", "stuck")!;
        Assert.Equal(30, pod.Metadata.DeletionGracePeriodSeconds);
        Assert.InRange(new DateTimeOffset(pod.Metadata.DeletionTimestamp!.Value, TimeSpan.Zero), before.AddSeconds(29), before.AddSeconds(32));

        await _k8s.CoreV1.DeleteNamespacedPodAsync("stuck", "tool-a", gracePeriodSeconds: 60);
        Assert.Equal(30, _api.GetPod("tool-a", "stuck")!.Metadata.DeletionGracePeriodSeconds);
        await _k8s.CoreV1.DeleteNamespacedPodAsync("stuck", "tool-a", gracePeriodSeconds: 5);
        Assert.Equal(5, _api.GetPod("tool-a", "stuck")!.Metadata.DeletionGracePeriodSeconds);

        _api.FinishTermination("tool-a", "stuck");
        Assert.Null(_api.GetPod("tool-a", "stuck"));

        // Without StayTerminating, this fake's kubelet confirms at once.
        _api.Put(FakeKubeApiServer.Pod("tool-a", "quick", Node));
        await _k8s.CoreV1.DeleteNamespacedPodAsync("quick", "tool-a");
        Assert.Null(_api.GetPod("tool-a", "quick"));
        Assert.Equal(["DELETE pods/tool-a/stuck 200", "DELETE pods/tool-a/stuck 200", "DELETE pods/tool-a/stuck 200", "DELETE pods/tool-a/quick 200"],
            _api.Writes.Select(w => $"{w.Verb} {w.Target} {w.Code}"));
    }

    [Fact]
    public async Task AnEviction_ABudgetAllows_DecrementsIt_AndDryRunChangesNothing()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: 1, currentHealthy: 3));

        await Evict("tool-a", "web-0", dryRun: true);
        Assert.NotNull(_api.GetPod("tool-a", "web-0"));
        Assert.Equal(1, _api.GetBudget("tool-a", "web")!.Status.DisruptionsAllowed);

        await Evict("tool-a", "web-0");
        Assert.Null(_api.GetPod("tool-a", "web-0"));
        var budget = _api.GetBudget("tool-a", "web")!;
        Assert.Equal(0, budget.Status.DisruptionsAllowed);
        Assert.True(budget.Status.DisruptedPods.ContainsKey("web-0"));
        Assert.Equal(201, _api.Writes[^1].Code);
    }

    [Fact]
    public async Task AnEviction_ABudgetRefuses_Is429_WithTheApiServersMessageAndADisruptionBudgetCause()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2));

        var (code, status) = await Refused(() => Evict("tool-a", "web-0"));
        Assert.Equal(HttpStatusCode.TooManyRequests, code);
        Assert.Equal("TooManyRequests", (string?)status["reason"]);
        Assert.Equal("Cannot evict pod as it would violate the pod's disruption budget.", (string?)status["message"]);
        var cause = status["details"]!["causes"]![0]!;
        Assert.Equal("DisruptionBudget", (string?)cause["reason"]);
        Assert.Equal("The disruption budget web needs 2 healthy pods and has 2 currently", (string?)cause["message"]);
        Assert.NotNull(_api.GetPod("tool-a", "web-0"));

        // A budget the disruption controller has not seen yet is "still being processed" (429, retry after 10 s).
        _api.Put(FakeKubeApiServer.Pod("tool-b", "db-0", Node, App("db")));
        var fresh = FakeKubeApiServer.Budget("tool-b", "db", App("db"), disruptionsAllowed: 1);
        fresh.Metadata.Generation = 2;
        _api.Put(fresh);
        (code, status) = await Refused(() => Evict("tool-b", "db-0"));
        Assert.Equal(HttpStatusCode.TooManyRequests, code);
        Assert.Equal("The disruption budget db is still being processed by the server.", (string?)status["details"]!["causes"]![0]!["message"]);
        Assert.Equal(10, (int?)status["details"]!["retryAfterSeconds"]);
    }

    [Fact]
    public async Task AnEviction_OfAPodTwoBudgetsSelect_Is500_AndAnEmptySelectorSelectsNothing()
    {
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" }));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "by-app", App("web"), disruptionsAllowed: 1));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "by-tier", new Dictionary<string, string> { ["tier"] = "front" }, disruptionsAllowed: 1));
        var (code, status) = await Refused(() => Evict("tool-a", "web-0"));
        Assert.Equal(HttpStatusCode.InternalServerError, code);
        Assert.Equal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", (string?)status["message"]);
        Assert.Equal(1, _api.GetBudget("tool-a", "by-app")!.Status.DisruptionsAllowed);

        _api.Put(FakeKubeApiServer.Pod("tool-c", "x", Node, App("x")));
        var empty = FakeKubeApiServer.Budget("tool-c", "all", App("x"), disruptionsAllowed: 0);
        empty.Spec.Selector = new V1LabelSelector();
        _api.Put(empty);
        await Evict("tool-c", "x");
        Assert.Null(_api.GetPod("tool-c", "x"));
    }

    [Fact]
    public async Task AnEviction_OfATerminatingOrNotReadyPod_IgnoresOrSparesTheBudget()
    {
        // Terminating: canIgnorePDB, deleted without looking at the budget.
        _api.Put(FakeKubeApiServer.Pod("tool-a", "web-0", Node, App("web")));
        _api.Put(FakeKubeApiServer.Budget("tool-a", "web", App("web"), disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2));
        _api.StayTerminating("tool-a", "web-0");
        await _k8s.CoreV1.DeleteNamespacedPodAsync("web-0", "tool-a");
        await Evict("tool-a", "web-0");
        Assert.NotNull(_api.GetPod("tool-a", "web-0")!.Metadata.DeletionTimestamp);

        // Not Ready while the budget is met: deleted, no decrement.
        _api.Put(FakeKubeApiServer.Pod("tool-b", "db-0", Node, App("db"), ready: false));
        _api.Put(FakeKubeApiServer.Budget("tool-b", "db", App("db"), disruptionsAllowed: 1, currentHealthy: 2, desiredHealthy: 2));
        await Evict("tool-b", "db-0");
        Assert.Null(_api.GetPod("tool-b", "db-0"));
        Assert.Equal(1, _api.GetBudget("tool-b", "db")!.Status.DisruptionsAllowed);

        var (code, status) = await Refused(() => Evict("tool-b", "gone"));
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Equal("pods \"gone\" not found", (string?)status["message"]);
    }

    [Fact]
    public async Task ANodePatch_WithAStaleResourceVersion_Is409_WithTheApiServersMessage_AndChangesNothing()
    {
        var rv = _api.GetNode(Node)!.Metadata.ResourceVersion;
        _api.InterleaveNodeWrites(1); // the kubelet's heartbeat lands first
        var (code, status) = await Refused(() => _k8s.CoreV1.PatchNodeAsync(new V1Patch($$$"""{"metadata":{"resourceVersion":"{{{rv}}}"},"spec":{"unschedulable":true}}""", V1Patch.PatchType.MergePatch), Node));
        Assert.Equal(HttpStatusCode.Conflict, code);
        Assert.Equal("Conflict", (string?)status["reason"]);
        Assert.Equal($"Operation cannot be fulfilled on nodes \"{Node}\": the object has been modified; please apply your changes to the latest version and try again", (string?)status["message"]);
        Assert.NotEqual(true, _api.GetNode(Node)!.Spec.Unschedulable);

        // Read again and the patch lands; status is not changed through the main resource; a null annotation is removed.
        rv = _api.GetNode(Node)!.Metadata.ResourceVersion;
        var patched = await _k8s.CoreV1.PatchNodeAsync(new V1Patch($$$"""{"metadata":{"resourceVersion":"{{{rv}}}","annotations":{"a":"1","b":"2"}},"spec":{"unschedulable":true},"status":{"conditions":[]}}""", V1Patch.PatchType.MergePatch), Node);
        Assert.True(patched.Spec.Unschedulable);
        Assert.Single(patched.Status.Conditions);
        await _k8s.CoreV1.PatchNodeAsync(new V1Patch("""{"metadata":{"annotations":{"a":null}}}""", V1Patch.PatchType.MergePatch), Node);
        Assert.Equal(["b"], _api.GetNode(Node)!.Metadata.Annotations.Keys);
        Assert.Equal([409, 200, 200], _api.Writes.Select(w => w.Code));
    }

    [Fact]
    public async Task PodsAreWatchedByNodeName()
    {
        var list = await _k8s.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<string>();
        var watching = Task.Run(async () =>
        {
            await foreach (var (type, pod) in _k8s.CoreV1.WatchListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cts.Token))
            {
                seen.Add($"{type} {pod.Metadata.Name}");
                if (pod.Metadata.Name == "last")
                {
                    return;
                }
            }
        });
        _api.Put(FakeKubeApiServer.Pod("tool-a", "other-node", "tools-k8s-worker-nfs-8"));
        _api.Put(FakeKubeApiServer.Pod("tool-a", "mine", Node));
        _api.Put(FakeKubeApiServer.Pod("tool-a", "last", Node));
        await watching;
        Assert.Equal(["Added mine", "Added last"], seen);
    }
}
