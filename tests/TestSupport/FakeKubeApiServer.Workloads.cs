using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Toolforge.Agents.TestSupport;

/// <summary>One write the fake API server received, in the order it received them (failed ones included).</summary>
/// <param name="Seq">1, 2, 3 ... over every write.</param>
/// <param name="Verb">POST, PATCH, PUT or DELETE.</param>
/// <param name="Target">What was written: "nodes/N", "nodes/N/status", "pods/NS/N", "pods/NS/N/eviction", "events/NS/N".</param>
/// <param name="Code">The HTTP status answered.</param>
/// <param name="Detail">The body (patches), the Status message (refusals) or a short note.</param>
public sealed record ApiWrite(int Seq, string Verb, string Target, int Code, string Detail);

/// <summary>
/// Pods, PodDisruptionBudgets, Node patches and the eviction subresource, as kube-apiserver behaves (read from
/// kubernetes/kubernetes pkg/registry/core/pod/storage/eviction.go and k8s.io/apimachinery's errors.go; the messages
/// are the API server's own):
/// <list type="bullet">
/// <item>Pods list and watch by <c>fieldSelector=spec.nodeName=N</c> (and metadata.name), with limit/continue.</item>
/// <item>DELETE of a pod with <c>gracePeriodSeconds</c> (the query or a DeleteOptions body; else the pod's
/// terminationGracePeriodSeconds, 30 by default): a pod bound to a node gets metadata.deletionTimestamp (now + grace)
/// and deletionGracePeriodSeconds and stays; the "kubelet" of this fake then removes it at once, unless the test said
/// <see cref="StayTerminating"/> (it stays Terminating until <see cref="FinishTermination"/>). A second delete only
/// shortens the grace. A grace of 0 or an unbound pod is removed at once.</item>
/// <item>POST pods/NAME/eviction (policy/v1 Eviction): a Succeeded, Failed or Pending pod, or one already
/// terminating, is deleted without looking at budgets; otherwise the budgets of its namespace whose non-empty selector
/// matches its labels: more than one → 500 "This pod has more than one PodDisruptionBudget, which the eviction
/// subresource does not support."; observedGeneration behind generation → 429 "is still being processed";
/// disruptionsAllowed 0 → 429 TooManyRequests "Cannot evict pod as it would violate the pod's disruption budget."
/// with a DisruptionBudget cause "The disruption budget NAME needs D healthy pods and has C currently"; negative →
/// 403; else disruptionsAllowed is decremented (not for dryRun=All) and the pod deleted; a pod not Ready whose budget
/// is met is deleted without a decrement. Success is 201 with a Status "Success".</item>
/// <item>PATCH nodes/NAME (merge or strategic merge): spec and metadata (labels, annotations; null deletes) change,
/// status does not; a <c>metadata.resourceVersion</c> in the patch is a precondition: another one → 409 Conflict
/// "Operation cannot be fulfilled on nodes "NAME": the object has been modified; please apply your changes to the
/// latest version and try again".</item>
/// <item><see cref="Writes"/>: every write in order; <see cref="Written"/> is raised after each (outside the lock), so a
/// test can act "between" two writes of the agent (an admin's uncordon, the API server going down).</item>
/// </list>
/// </summary>
public sealed partial class FakeKubeApiServer
{
    private const string OptimisticLock = "the object has been modified; please apply your changes to the latest version and try again";

    private readonly List<ApiWrite> _writes = [];
    private readonly HashSet<string> _stayTerminating = new(StringComparer.Ordinal);
    private int _interleaveNodeWrites;
    private volatile bool _down;

    /// <summary>Raised after each write is logged (not under the server's lock).</summary>
    public event Action<ApiWrite>? Written;

    /// <summary>While true every request (reads too) is answered 503, as when no API server is behind the address.</summary>
    public bool Down
    {
        get => _down;
        set => _down = value;
    }

    /// <summary>Every write, in order.</summary>
    public IReadOnlyList<ApiWrite> Writes
    {
        get
        {
            lock (_lock)
            {
                return [.. _writes];
            }
        }
    }

    /// <summary>When the pod NS/NAME is deleted it stays Terminating (its kubelet never confirms) until <see cref="FinishTermination"/>.</summary>
    public void StayTerminating(string ns, string name)
    {
        lock (_lock)
        {
            _stayTerminating.Add($"{ns}/{name}");
        }
    }

    /// <summary>The kubelet confirms the pod's end: a Terminating pod is removed.</summary>
    public void FinishTermination(string ns, string name)
    {
        lock (_lock)
        {
            _stayTerminating.Remove($"{ns}/{name}");
            if (_objects["pods"].TryGetValue($"{ns}/{name}", out var pod) && pod["metadata"]?["deletionTimestamp"] is not null)
            {
                _objects["pods"].Remove($"{ns}/{name}");
                Notify(++_rv, "pods", "DELETED", pod);
            }
        }
    }

    /// <summary>
    /// The next <paramref name="count"/> patches of a Node's spec or metadata each find the Node changed just before they
    /// land (as the kubelet's status heartbeat changes it every few seconds): one carrying a resourceVersion precondition
    /// is refused with 409.
    /// </summary>
    public void InterleaveNodeWrites(int count)
    {
        lock (_lock)
        {
            _interleaveNodeWrites = count;
        }
    }

    /// <summary>Changes the stored Node as another client would (an admin's `kubectl uncordon`: spec.unschedulable false).</summary>
    public void ChangeNode(string name, Action<JsonObject> change)
    {
        lock (_lock)
        {
            var node = _objects["nodes"]["/" + name];
            change(node);
            var rv = ++_rv;
            node["metadata"]!["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
            Notify(rv, "nodes", "MODIFIED", (JsonObject)node.DeepClone());
        }
    }

    /// <summary>The stored pod, or null once it is gone.</summary>
    public V1Pod? GetPod(string ns, string name)
    {
        lock (_lock)
        {
            return _objects["pods"].TryGetValue($"{ns}/{name}", out var p) ? KubernetesJson.Deserialize<V1Pod>(p.ToJsonString()) : null;
        }
    }

    /// <summary>The stored PodDisruptionBudget.</summary>
    public V1PodDisruptionBudget? GetBudget(string ns, string name)
    {
        lock (_lock)
        {
            return _objects["poddisruptionbudgets"].TryGetValue($"{ns}/{name}", out var p) ? KubernetesJson.Deserialize<V1PodDisruptionBudget>(p.ToJsonString()) : null;
        }
    }

    private void MapWorkloads(WebApplication app)
    {
        app.MapGet("/api/v1/namespaces/{ns}/pods/{name}", ctx => GetPodAsync(ctx));
        app.MapDelete("/api/v1/namespaces/{ns}/pods/{name}", ctx => DeletePodAsync(ctx));
        app.MapPost("/api/v1/namespaces/{ns}/pods/{name}/eviction", ctx => EvictAsync(ctx));
        app.MapMethods("/api/v1/nodes/{name}", ["PATCH"], ctx => PatchNodeAsync(ctx));
    }

    private void LogWrite(string verb, string target, int code, string detail)
    {
        ApiWrite w;
        lock (_lock)
        {
            w = new ApiWrite(_writes.Count + 1, verb, target, code, detail);
            _writes.Add(w);
        }

        Written?.Invoke(w);
    }

    // "metadata.name=x", "spec.nodeName=x", "spec.nodeName==x", comma-joined; null when a selector is not one of those.
    private static Func<JsonObject, bool>? FieldSelector(string selector)
    {
        var tests = new List<Func<JsonObject, bool>>();
        foreach (var term in selector.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = term.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                return null;
            }

            var (field, value) = (term[..eq], term[(eq + 1)..].TrimStart('='));
            switch (field)
            {
                case "metadata.name":
                    tests.Add(o => (string?)o["metadata"]?["name"] == value);
                    break;
                case "spec.nodeName":
                    tests.Add(o => ((string?)o["spec"]?["nodeName"] ?? string.Empty) == value);
                    break;
                default:
                    return null;
            }
        }

        return o => tests.All(t => t(o));
    }

    private static Task StatusAsync(HttpContext ctx, JsonObject status)
    {
        status["kind"] = "Status";
        status["apiVersion"] = "v1";
        return JsonAsync(ctx, status, (int)status["code"]!);
    }

    private static JsonObject Failure(int code, string? reason, string message, JsonObject? details = null)
    {
        var s = new JsonObject { ["status"] = "Failure", ["message"] = message, ["code"] = code };
        if (reason is not null)
        {
            s["reason"] = reason;
        }

        if (details is not null)
        {
            s["details"] = details;
        }

        return s;
    }

    private static JsonObject NotFound(string resource, string name) =>
        Failure(404, "NotFound", $"{resource} \"{name}\" not found", new JsonObject { ["name"] = name, ["kind"] = resource });

    private Task GetPodAsync(HttpContext ctx)
    {
        var (ns, name) = ((string)ctx.Request.RouteValues["ns"]!, (string)ctx.Request.RouteValues["name"]!);
        JsonObject? pod;
        lock (_lock)
        {
            pod = _objects["pods"].TryGetValue($"{ns}/{name}", out var p) ? (JsonObject)p.DeepClone() : null;
        }

        return pod is null ? StatusAsync(ctx, NotFound("pods", name)) : JsonAsync(ctx, pod);
    }

    private async Task DeletePodAsync(HttpContext ctx)
    {
        var (ns, name) = ((string)ctx.Request.RouteValues["ns"]!, (string)ctx.Request.RouteValues["name"]!);
        if (Failing(ctx, out var failed))
        {
            await failed;
            return;
        }

        var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
        var options = body.Length > 0 ? JsonNode.Parse(body) as JsonObject : null;
        long? grace = long.TryParse(ctx.Request.Query["gracePeriodSeconds"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var g) ? g : (long?)options?["gracePeriodSeconds"];
        var dryRun = ctx.Request.Query["dryRun"] == "All" || options?["dryRun"] is JsonArray { Count: > 0 };
        var (code, result) = DeletePod(ns, name, grace, dryRun, options?["preconditions"]?["resourceVersion"]?.GetValue<string>());
        LogWrite("DELETE", $"pods/{ns}/{name}", code, dryRun ? "dryRun" : $"grace {grace?.ToString(CultureInfo.InvariantCulture) ?? "default"}");
        await (code == 200 ? JsonAsync(ctx, result) : StatusAsync(ctx, result));
    }

    // A pod's deletion as the registry does it: graceful for a pod bound to a node (deletionTimestamp, stays until its
    // kubelet confirms), at once otherwise. Returns the code and the pod (200) or the Status.
    private (int Code, JsonObject Result) DeletePod(string ns, string name, long? grace, bool dryRun, string? precondition)
    {
        lock (_lock)
        {
            if (!_objects["pods"].TryGetValue($"{ns}/{name}", out var pod))
            {
                return (404, NotFound("pods", name));
            }

            var meta = pod["metadata"]!.AsObject();
            if (precondition is not null && precondition != (string?)meta["resourceVersion"])
            {
                return (409, Failure(409, "Conflict", $"Operation cannot be fulfilled on pods \"{name}\": {OptimisticLock}", new JsonObject { ["name"] = name, ["kind"] = "pods" }));
            }

            if (dryRun)
            {
                return (200, (JsonObject)pod.DeepClone());
            }

            var seconds = grace ?? (long?)pod["spec"]?["terminationGracePeriodSeconds"] ?? 30;
            var bound = !string.IsNullOrEmpty((string?)pod["spec"]?["nodeName"]);
            if (seconds <= 0 || !bound)
            {
                _objects["pods"].Remove($"{ns}/{name}");
                Notify(++_rv, "pods", "DELETED", pod);
                return (200, (JsonObject)pod.DeepClone());
            }

            var now = DateTimeOffset.UtcNow;
            var previous = (long?)meta["deletionGracePeriodSeconds"];
            if (previous is null || seconds < previous)
            {
                // The first graceful delete sets the deadline; a later one may only bring it forward.
                meta["deletionTimestamp"] = KubeTime(now.AddSeconds(seconds));
                meta["deletionGracePeriodSeconds"] = seconds;
                var rv = ++_rv;
                meta["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
                Notify(rv, "pods", "MODIFIED", (JsonObject)pod.DeepClone());
            }

            var answer = (JsonObject)pod.DeepClone();
            if (!_stayTerminating.Contains($"{ns}/{name}"))
            {
                // This fake's kubelet stops the containers at once and confirms with a delete of grace 0.
                _objects["pods"].Remove($"{ns}/{name}");
                Notify(++_rv, "pods", "DELETED", pod);
            }

            return (200, answer);
        }
    }

    private async Task EvictAsync(HttpContext ctx)
    {
        var (ns, name) = ((string)ctx.Request.RouteValues["ns"]!, (string)ctx.Request.RouteValues["name"]!);
        var target = $"pods/{ns}/{name}/eviction";
        if (Failing(ctx, out var failed))
        {
            await failed;
            return;
        }

        var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
        JsonObject status;
        if (JsonNode.Parse(body.Length > 0 ? body : "null") is not JsonObject eviction)
        {
            status = Failure(400, "BadRequest", "not a Eviction object");
        }
        else if ((string?)eviction["metadata"]?["name"] != name)
        {
            status = Failure(400, "BadRequest", "name in URL does not match name in Eviction object");
        }
        else
        {
            var options = eviction["deleteOptions"] as JsonObject;
            var dryRun = ctx.Request.Query["dryRun"] == "All" || options?["dryRun"] is JsonArray { Count: > 0 };
            status = Evict(ns, name, (long?)options?["gracePeriodSeconds"], dryRun);
        }

        var code = (int)status["code"]!;
        LogWrite("POST", target, code, (string?)status["message"] ?? (string?)status["status"] ?? string.Empty);
        if (code == 429 && (int?)status["details"]?["retryAfterSeconds"] is > 0 and var after)
        {
            ctx.Response.Headers.RetryAfter = after.ToString(CultureInfo.InvariantCulture);
        }

        await StatusAsync(ctx, status);
    }

    // EvictionREST.Create, one request: the Status answered (its code is the HTTP status).
    private JsonObject Evict(string ns, string name, long? grace, bool dryRun)
    {
        lock (_lock)
        {
            if (!_objects["pods"].TryGetValue($"{ns}/{name}", out var pod))
            {
                return NotFound("pods", name);
            }

            var phase = (string?)pod["status"]?["phase"];
            if (phase is "Succeeded" or "Failed" or "Pending" || pod["metadata"]?["deletionTimestamp"] is not null)
            {
                // canIgnorePDB: the pod already caused its disruption, it is deleted without looking at budgets.
                var (code, result) = DeletePod(ns, name, grace, dryRun, null);
                return code == 200 ? Success() : result;
            }

            var labels = pod["metadata"]?["labels"] as JsonObject;
            var budgets = _objects["poddisruptionbudgets"].Values
                .Where(b => (string?)b["metadata"]?["namespace"] == ns && Selects(b["spec"]?["selector"] as JsonObject, labels))
                .ToList();
            if (budgets.Count > 1)
            {
                // Returned as an object, not an error: a Status with code 500 and no reason.
                return new JsonObject { ["status"] = "Failure", ["message"] = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", ["code"] = 500 };
            }

            if (budgets.Count == 1)
            {
                var b = budgets[0];
                var st = b["status"] as JsonObject ?? [];
                var budget = (string)b["metadata"]!["name"]!;
                long Field(string f) => (long?)st[f] ?? 0;
                var notReadyButMet = !Ready(pod) && Field("currentHealthy") >= Field("desiredHealthy") && Field("desiredHealthy") > 0;
                if (!notReadyButMet)
                {
                    if (Field("observedGeneration") < ((long?)b["metadata"]?["generation"] ?? 0))
                    {
                        return TooManyRequests(10, $"The disruption budget {budget} is still being processed by the server.");
                    }

                    if (Field("disruptionsAllowed") < 0)
                    {
                        return Failure(403, "Forbidden", $"poddisruptionbudgets.policy \"{budget}\" is forbidden: pdb disruptions allowed is negative", new JsonObject { ["name"] = budget, ["group"] = "policy", ["kind"] = "poddisruptionbudgets" });
                    }

                    if (Field("disruptionsAllowed") == 0)
                    {
                        return TooManyRequests(0, $"The disruption budget {budget} needs {Field("desiredHealthy")} healthy pods and has {Field("currentHealthy")} currently");
                    }

                    if (!dryRun)
                    {
                        st["disruptionsAllowed"] = Field("disruptionsAllowed") - 1;
                        var disrupted = st["disruptedPods"] as JsonObject ?? [];
                        disrupted[name] = KubeTime(DateTimeOffset.UtcNow);
                        st["disruptedPods"] = disrupted;
                        b["status"] = st;
                        var rv = ++_rv;
                        b["metadata"]!["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
                        Notify(rv, "poddisruptionbudgets", "MODIFIED", (JsonObject)b.DeepClone());
                    }
                }
            }

            var (deleteCode, deleted) = DeletePod(ns, name, grace, dryRun, null);
            return deleteCode == 200 ? Success() : deleted;
        }
    }

    private static JsonObject Success() => new() { ["status"] = "Success", ["code"] = 201 };

    // errors.NewTooManyRequests + a DisruptionBudget cause.
    private static JsonObject TooManyRequests(int retryAfter, string cause) => Failure(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        new JsonObject
        {
            ["causes"] = new JsonArray(new JsonObject { ["reason"] = "DisruptionBudget", ["message"] = cause }),
            ["retryAfterSeconds"] = retryAfter,
        });

    private static bool Ready(JsonObject pod) =>
        pod["status"]?["conditions"] is JsonArray c && c.OfType<JsonObject>().Any(x => (string?)x["type"] == "Ready" && (string?)x["status"] == "True");

    // metav1.LabelSelectorAsSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); an empty or
    // missing selector matches nothing (the eviction code's rule, not the general one).
    private static bool Selects(JsonObject? selector, JsonObject? labels)
    {
        var match = selector?["matchLabels"] as JsonObject;
        var expressions = selector?["matchExpressions"] as JsonArray;
        if ((match is null || match.Count == 0) && (expressions is null || expressions.Count == 0))
        {
            return false;
        }

        string? Label(string k) => (string?)labels?[k];
        if (match is not null && match.Any(m => Label(m.Key) != (string?)m.Value))
        {
            return false;
        }

        return expressions is null || expressions.OfType<JsonObject>().All(e =>
        {
            var key = (string)e["key"]!;
            var values = (e["values"] as JsonArray)?.Select(v => (string?)v).ToList() ?? [];
            return (string?)e["operator"] switch
            {
                "In" => Label(key) is { } v && values.Contains(v),
                "NotIn" => Label(key) is not { } v2 || !values.Contains(v2),
                "Exists" => Label(key) is not null,
                "DoesNotExist" => Label(key) is null,
                _ => false,
            };
        });
    }

    private async Task PatchNodeAsync(HttpContext ctx)
    {
        var name = (string)ctx.Request.RouteValues["name"]!;
        var target = $"nodes/{name}";
        if (Failing(ctx, out var failed))
        {
            await failed;
            return;
        }

        var contentType = ctx.Request.ContentType ?? string.Empty;
        var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
        var strategic = contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.Ordinal);
        JsonObject? answer = null;
        JsonObject? status = null;
        if (!strategic && !contentType.StartsWith("application/merge-patch+json", StringComparison.Ordinal))
        {
            status = Failure(415, "UnsupportedMediaType", $"the fake API server takes strategic merge and merge patches, not {contentType}");
        }
        else if (JsonNode.Parse(body) is not JsonObject patch)
        {
            status = Failure(400, "BadRequest", "the patch is not a JSON object");
        }
        else
        {
            lock (_lock)
            {
                if (!_objects["nodes"].TryGetValue("/" + name, out var node))
                {
                    status = NotFound("nodes", name);
                }
                else
                {
                    if (_interleaveNodeWrites > 0)
                    {
                        _interleaveNodeWrites--;
                        var hb = ++_rv;
                        node["metadata"]!["resourceVersion"] = hb.ToString(CultureInfo.InvariantCulture);
                        Notify(hb, "nodes", "MODIFIED", (JsonObject)node.DeepClone());
                    }

                    var wanted = (string?)patch["metadata"]?["resourceVersion"];
                    if (wanted is not null && wanted != (string?)node["metadata"]?["resourceVersion"])
                    {
                        status = Failure(409, "Conflict", $"Operation cannot be fulfilled on nodes \"{name}\": {OptimisticLock}", new JsonObject { ["name"] = name, ["kind"] = "nodes" });
                    }
                    else
                    {
                        // The main resource: spec and metadata change, status is kept (as the registry's PrepareForUpdate does).
                        var keep = node["status"]?.DeepClone();
                        patch.Remove("status");
                        if (patch["metadata"] is JsonObject pm)
                        {
                            pm.Remove("resourceVersion");
                        }

                        Merge(node, patch, strategic, "node");
                        node["status"] = keep;
                        var rv = ++_rv;
                        node["metadata"]!["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
                        Notify(rv, "nodes", "MODIFIED", (JsonObject)node.DeepClone());
                        answer = (JsonObject)node.DeepClone();
                    }
                }
            }
        }

        LogWrite("PATCH", target, answer is null ? (int)status!["code"]! : 200, answer is null ? (string)status!["message"]! : body);
        await (answer is null ? StatusAsync(ctx, status!) : JsonAsync(ctx, answer));
    }

    private static string KubeTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    // Builders.
    public static V1Pod Pod(string ns, string name, string node, IDictionary<string, string>? labels = null, string? ownerKind = null, bool mirror = false, bool ready = true, long? grace = null, string phase = "Running") => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Uid = Guid.NewGuid().ToString(),
            Labels = labels,
            Annotations = mirror ? new Dictionary<string, string> { ["kubernetes.io/config.mirror"] = "a3f0c1e2d4b5" } : null,
            OwnerReferences = ownerKind is null ? null : [new V1OwnerReference { ApiVersion = ownerKind == "DaemonSet" ? "apps/v1" : "apps/v1", Kind = ownerKind, Name = name + "-owner", Uid = Guid.NewGuid().ToString(), Controller = true }],
        },
        Spec = new V1PodSpec { NodeName = node, TerminationGracePeriodSeconds = grace, Containers = [new V1Container { Name = "main", Image = "docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest" }] },
        Status = new V1PodStatus { Phase = phase, Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }] },
    };

    /// <summary>
    /// A running pod whose containers name <paramref name="specImages"/> (a tag, or pinned "name@sha256:…") and, as the
    /// kubelet writes once they started, the images they run in status.containerStatuses[].imageID (<paramref name="imageIds"/>,
    /// in the runtime's form: "docker-pullable://name@sha256:…", "name@sha256:…", "sha256:…"; fewer than the containers:
    /// a pull still to come).
    /// </summary>
    public static V1Pod PodRunning(string ns, string name, string node, string[] specImages, string[] imageIds)
    {
        var pod = Pod(ns, name, node);
        pod.Spec.Containers = [.. specImages.Select((image, n) => new V1Container { Name = $"c{n}", Image = image })];
        pod.Status.ContainerStatuses = [.. imageIds.Select((id, n) => new V1ContainerStatus { Name = $"c{n}", Image = specImages.ElementAtOrDefault(n) ?? "unknown", ImageID = id, Ready = true, RestartCount = 0 })];
        return pod;
    }

    public static V1PodDisruptionBudget Budget(string ns, string name, IDictionary<string, string> matchLabels, int disruptionsAllowed, int currentHealthy = 2, int desiredHealthy = 2) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Generation = 1 },
        Spec = new V1PodDisruptionBudgetSpec { Selector = new V1LabelSelector { MatchLabels = matchLabels }, MinAvailable = desiredHealthy },
        Status = new V1PodDisruptionBudgetStatus { DisruptionsAllowed = disruptionsAllowed, CurrentHealthy = currentHealthy, DesiredHealthy = desiredHealthy, ExpectedPods = currentHealthy, ObservedGeneration = 1 },
    };
}
