using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A small stand-in for kube-apiserver (tests only): real Kubernetes JSON for nodes, services, endpointslices and
/// namespaces, list and watch (ADDED/MODIFIED/DELETED lines, resourceVersions, fieldSelector on metadata.name,
/// timeoutSeconds), on 127.0.0.1 over plain HTTP. Tests change objects with <see cref="Put"/> and <see cref="Delete"/>.
/// A node's status is patched as the API server does it (PATCH /api/v1/nodes/NAME/status: strategic merge, the
/// conditions list merged by type, <c>$patch: delete</c> honoured; JSON merge patch replaces lists), and core/v1
/// Events are created and patched (POST/PATCH /api/v1/namespaces/NS/events); both are recorded for tests to read.
/// <see cref="FailWrites"/> makes the next writes fail as an overloaded API server would. Pods, PodDisruptionBudgets,
/// graceful deletes, the eviction subresource, Node patches with resourceVersion preconditions, the ordered write log
/// and the down switch are in FakeKubeApiServer.Workloads.cs. Lists take limit/continue; fieldSelector takes
/// metadata.name and spec.nodeName (anything else is a 400, so a test cannot pass on a selector the fake ignored).
/// </summary>
public sealed partial class FakeKubeApiServer : IAsyncDisposable
{
    private sealed record Kind(string Path, string ListKind, string ApiVersion, bool Namespaced);

    private static readonly Dictionary<string, Kind> Kinds = new()
    {
        ["nodes"] = new("/api/v1/nodes", "NodeList", "v1", false),
        ["services"] = new("/api/v1/services", "ServiceList", "v1", true),
        ["endpointslices"] = new("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSliceList", "discovery.k8s.io/v1", true),
        ["namespaces"] = new("/api/v1/namespaces", "NamespaceList", "v1", false),
        ["pods"] = new("/api/v1/pods", "PodList", "v1", true),
        ["poddisruptionbudgets"] = new("/apis/policy/v1/poddisruptionbudgets", "PodDisruptionBudgetList", "policy/v1", true),
    };

    private readonly object _lock = new();
    private readonly Dictionary<string, Dictionary<string, JsonObject>> _objects = Kinds.Keys.ToDictionary(k => k, _ => new Dictionary<string, JsonObject>());
    private readonly List<(long Rv, string Kind, string Type, JsonObject Object)> _history = [];
    private readonly List<(string Kind, Channel<(long, string, JsonObject)> Channel)> _watchers = [];
    private readonly WebApplication _app;
    private readonly List<(string ContentType, string Body)> _statusPatches = [];
    private readonly Dictionary<string, JsonObject> _events = new(StringComparer.Ordinal);
    private int _eventWrites;
    private int _failWrites;
    private int _failStatus;
    private long _rv = 100;
    private long _compactedRv;

    private FakeKubeApiServer(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public string Url => $"{Scheme}://127.0.0.1:{Port}";

    public int WatchRequests { get; private set; }

    /// <summary>Subjects of the client certificates requests came with ("none" without one), in order.</summary>
    public List<string> ClientCertificates { get; } = [];

    private string Scheme { get; init; } = "http";

    /// <summary>Plain HTTP on 127.0.0.1, or with <paramref name="tls"/> HTTPS asking for a client certificate of that CA.</summary>
    public static async Task<FakeKubeApiServer> StartAsync((System.Security.Cryptography.X509Certificates.X509Certificate2 Server, System.Security.Cryptography.X509Certificates.X509Certificate2 ClientCa)? tls = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (tls is null)
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
        }
        else
        {
            // As kube-apiserver with --client-ca-file: a client certificate is asked for and must lead to that CA.
            builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.UseHttps(h =>
            {
                h.ServerCertificate = tls.Value.Server;
                h.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate;
                h.ClientCertificateValidation = (cert, _, _) => Toolforge.Agents.Common.Tls.Certificates.ValidateChain(cert, [tls.Value.ClientCa]) is null;
            })));
        }

        var app = builder.Build();
        var server = new FakeKubeApiServer(app) { Scheme = tls is null ? "http" : "https" };
        app.Use(async (ctx, next) =>
        {
            var cert = await ctx.Connection.GetClientCertificateAsync();
            lock (server._lock)
            {
                server.ClientCertificates.Add(cert?.Subject ?? "none");
            }

            if (server.Down)
            {
                // As an API server behind a load balancer with no backend left: every request, reads included.
                await StatusAsync(ctx, 503, "ServiceUnavailable", "the fake API server is down");
                return;
            }

            await next(ctx);
        });
        foreach (var (name, kind) in Kinds)
        {
            app.MapGet(kind.Path, ctx => server.HandleAsync(name, kind, ctx));
        }

        app.MapGet("/api/v1/nodes/{name}", ctx => server.GetNodeAsync(ctx));
        app.MapMethods("/api/v1/nodes/{name}/status", ["PATCH"], ctx => server.PatchNodeStatusAsync(ctx));
        app.MapPost("/api/v1/namespaces/{ns}/events", ctx => server.CreateEventAsync(ctx));
        app.MapMethods("/api/v1/namespaces/{ns}/events/{name}", ["PATCH", "PUT"], ctx => server.PatchEventAsync(ctx));
        server.MapWorkloads(app);

        await app.StartAsync();
        server.Port = new Uri(app.Urls.First()).Port;
        return server;
    }

    /// <summary>A kubeconfig file pointing at this server.</summary>
    public string WriteKubeconfig(string path)
    {
        File.WriteAllText(path, $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: {{Url}}
            users:
            - name: agent
              user:
                token: test-token
            contexts:
            - name: fake
              context:
                cluster: fake
                user: agent
            current-context: fake
            """);
        return path;
    }

    public void Put(IKubernetesObject<V1ObjectMeta> obj)
    {
        var kind = obj switch
        {
            V1Node => "nodes",
            V1Service => "services",
            V1EndpointSlice => "endpointslices",
            V1Namespace => "namespaces",
            V1Pod => "pods",
            V1PodDisruptionBudget => "poddisruptionbudgets",
            _ => throw new ArgumentException($"unsupported kind {obj.GetType().Name}"),
        };
        var k = Kinds[kind];
        obj.ApiVersion = k.ApiVersion;
        obj.Kind = k.ListKind[..^4];
        lock (_lock)
        {
            var rv = ++_rv;
            obj.Metadata.ResourceVersion = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
            obj.Metadata.Uid ??= Guid.NewGuid().ToString();
            var json = JsonNode.Parse(KubernetesJson.Serialize(obj))!.AsObject();
            var key = $"{obj.Metadata.NamespaceProperty}/{obj.Metadata.Name}";
            var type = _objects[kind].ContainsKey(key) ? "MODIFIED" : "ADDED";
            _objects[kind][key] = json;
            Notify(rv, kind, type, json);
        }
    }

    /// <summary>Every Service, EndpointSlice, Namespace and Node of kubectl's JSON (a List or one object); other kinds are left out.</summary>
    public void PutKubectlJson(string json)
    {
        var root = JsonNode.Parse(json)!.AsObject();
        var items = root["items"] is JsonArray a ? a.Select(i => i!.AsObject()).ToList() : [root];
        var listKind = (string?)root["kind"] is { } lk && lk.EndsWith("List", StringComparison.Ordinal) && lk != "List" ? lk[..^4] : null;
        foreach (var item in items)
        {
            IKubernetesObject<V1ObjectMeta>? obj = ((string?)item["kind"] ?? listKind) switch
            {
                "Service" => KubernetesJson.Deserialize<V1Service>(item.ToJsonString()),
                "EndpointSlice" => KubernetesJson.Deserialize<V1EndpointSlice>(item.ToJsonString()),
                "Namespace" => KubernetesJson.Deserialize<V1Namespace>(item.ToJsonString()),
                "Node" => KubernetesJson.Deserialize<V1Node>(item.ToJsonString()),
                _ => null,
            };
            if (obj is not null)
            {
                Put(obj);
            }
        }
    }

    /// <summary>
    /// As etcd's compaction: the history so far is forgotten and every open watch ends; a watch from a resourceVersion
    /// before now gets the ERROR event with code 410 a real API server sends, and the client must list again.
    /// </summary>
    public void Compact()
    {
        lock (_lock)
        {
            _compactedRv = ++_rv;
            _history.Clear();
            foreach (var w in _watchers)
            {
                w.Channel.Writer.TryComplete();
            }
        }
    }

    /// <summary>List requests served (a client that lists again after a 410 makes one more).</summary>
    public int ListRequests { get; private set; }

    public void Delete(string kind, string? ns, string name)
    {
        lock (_lock)
        {
            var key = $"{ns}/{name}";
            if (_objects[kind].Remove(key, out var json))
            {
                var rv = ++_rv;
                Notify(rv, kind, "DELETED", json);
            }
        }
    }

    private void Notify(long rv, string kind, string type, JsonObject obj)
    {
        _history.Add((rv, kind, type, obj));
        foreach (var w in _watchers.Where(w => w.Kind == kind))
        {
            w.Channel.Writer.TryWrite((rv, type, obj));
        }
    }

    private async Task HandleAsync(string kind, Kind k, HttpContext ctx)
    {
        var q = ctx.Request.Query;
        if (FieldSelector(q["fieldSelector"].ToString()) is not { } Matches)
        {
            await StatusAsync(ctx, 400, "BadRequest", $"unable to parse requirement: the fake API server selects on metadata.name and spec.nodeName only (got {q["fieldSelector"]})");
            return;
        }

        if (q["watch"] == "true" || q["watch"] == "1")
        {
            await WatchAsync(kind, ctx, Matches);
            return;
        }

        JsonArray items;
        long rv;
        string? next;
        lock (_lock)
        {
            ListRequests++;
            // limit/continue as the API server pages a list: items in key order, the token names where the next page starts.
            var after = q["continue"].ToString() is { Length: > 0 } c ? Encoding.UTF8.GetString(Convert.FromBase64String(c)) : null;
            var limit = int.TryParse(q["limit"], out var l) && l > 0 ? l : int.MaxValue;
            var all = _objects[kind].Where(e => Matches(e.Value) && (after is null || string.CompareOrdinal(e.Key, after) > 0)).OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
            var page = all.Take(limit).ToList();
            next = all.Count > page.Count ? Convert.ToBase64String(Encoding.UTF8.GetBytes(page[^1].Key)) : null;
            items = new JsonArray(page.Select(e => (JsonNode)e.Value.DeepClone()).ToArray());
            rv = _rv;
        }

        var meta = new JsonObject { ["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (next is not null)
        {
            meta["continue"] = next;
        }

        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject
        {
            ["kind"] = k.ListKind,
            ["apiVersion"] = k.ApiVersion,
            ["metadata"] = meta,
            ["items"] = items,
        }.ToJsonString());
    }

    private async Task WatchAsync(string kind, HttpContext ctx, Func<JsonObject, bool> matches)
    {
        var from = long.TryParse(ctx.Request.Query["resourceVersion"], out var r) ? r : 0;
        var timeout = int.TryParse(ctx.Request.Query["timeoutSeconds"], out var t) ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(5);
        var channel = Channel.CreateUnbounded<(long, string, JsonObject)>();
        var expired = false;
        lock (_lock)
        {
            WatchRequests++;
            if (from < _compactedRv)
            {
                expired = true;
            }

            foreach (var h in _history.Where(h => h.Kind == kind && h.Rv > from))
            {
                channel.Writer.TryWrite((h.Rv, h.Type, h.Object));
            }

            _watchers.Add((kind, channel));
        }

        ctx.Response.ContentType = "application/json";
        if (expired)
        {
            // What kube-apiserver sends for a resourceVersion older than its compaction: 200, one ERROR event, the end.
            var status = new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["message"] = $"too old resource version: {from} ({_compactedRv})", ["reason"] = "Expired", ["code"] = 410 };
            await ctx.Response.WriteAsync(new JsonObject { ["type"] = "ERROR", ["object"] = status }.ToJsonString() + "\n");
            lock (_lock)
            {
                _watchers.RemoveAll(w => w.Channel == channel);
            }

            return;
        }

        await ctx.Response.Body.FlushAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        cts.CancelAfter(timeout);
        try
        {
            await foreach (var (_, type, obj) in channel.Reader.ReadAllAsync(cts.Token))
            {
                if (!matches(obj))
                {
                    continue;
                }

                var line = new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString() + "\n";
                await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line), cts.Token);
                await ctx.Response.Body.FlushAsync(cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // timeoutSeconds passed or the client went away: the watch ends, as the API server's does
        }
        finally
        {
            lock (_lock)
            {
                _watchers.RemoveAll(w => w.Channel == channel);
            }
        }
    }

    /// <summary>Every status patch received (content type and body), in order, failed ones included.</summary>
    public IReadOnlyList<(string ContentType, string Body)> StatusPatches
    {
        get
        {
            lock (_lock)
            {
                return [.. _statusPatches];
            }
        }
    }

    /// <summary>The Events as stored now (each create and patch applied).</summary>
    public IReadOnlyList<Corev1Event> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events.Values.Select(e => KubernetesJson.Deserialize<Corev1Event>(e.ToJsonString()))];
            }
        }
    }

    /// <summary>How many Event creates and patches were accepted.</summary>
    public int EventWrites
    {
        get
        {
            lock (_lock)
            {
                return _eventWrites;
            }
        }
    }

    /// <summary>The stored Node (as the API has it after every patch).</summary>
    public V1Node? GetNode(string name)
    {
        lock (_lock)
        {
            return _objects["nodes"].TryGetValue("/" + name, out var n) ? KubernetesJson.Deserialize<V1Node>(n.ToJsonString()) : null;
        }
    }

    private int _loseEventAnswers;

    /// <summary>
    /// The next <paramref name="count"/> Event creates are stored, then the connection is cut before the answer: what a
    /// client sees when its call timed out or was cancelled after the API server committed the write.
    /// </summary>
    public void LoseEventAnswers(int count)
    {
        lock (_lock)
        {
            _loseEventAnswers = count;
        }
    }

    /// <summary>The next <paramref name="count"/> writes (status patches, event creates and patches) fail with <paramref name="status"/>.</summary>
    public void FailWrites(int count, int status = 503)
    {
        lock (_lock)
        {
            (_failWrites, _failStatus) = (count, status);
        }
    }

    private bool Failing(HttpContext ctx, out Task response)
    {
        lock (_lock)
        {
            if (_failWrites > 0)
            {
                _failWrites--;
                LogWrite(ctx.Request.Method, ctx.Request.Path.Value ?? string.Empty, _failStatus, "failed on purpose");
                response = StatusAsync(ctx, _failStatus, "ServiceUnavailable", "the fake API server was told to fail this write");
                return true;
            }
        }

        response = Task.CompletedTask;
        return false;
    }

    private static async Task StatusAsync(HttpContext ctx, int code, string reason, string message)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject
        {
            ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["message"] = message, ["reason"] = reason, ["code"] = code,
        }.ToJsonString());
    }

    private static async Task JsonAsync(HttpContext ctx, JsonObject o, int code = 200)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(o.ToJsonString());
    }

    private Task GetNodeAsync(HttpContext ctx)
    {
        var name = (string)ctx.Request.RouteValues["name"]!;
        JsonObject? node;
        lock (_lock)
        {
            node = _objects["nodes"].TryGetValue("/" + name, out var n) ? (JsonObject)n.DeepClone() : null;
        }

        return node is null ? StatusAsync(ctx, 404, "NotFound", $"nodes \"{name}\" not found") : JsonAsync(ctx, node);
    }

    private async Task PatchNodeStatusAsync(HttpContext ctx)
    {
        var name = (string)ctx.Request.RouteValues["name"]!;
        var contentType = ctx.Request.ContentType ?? string.Empty;
        var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
        lock (_lock)
        {
            _statusPatches.Add((contentType, body));
        }

        if (Failing(ctx, out var failed))
        {
            await failed;
            return;
        }

        if (JsonNode.Parse(body) is not JsonObject patch)
        {
            await StatusAsync(ctx, 400, "BadRequest", "the patch is not a JSON object");
            return;
        }

        var strategic = contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.Ordinal);
        if (!strategic && !contentType.StartsWith("application/merge-patch+json", StringComparison.Ordinal))
        {
            await StatusAsync(ctx, 415, "UnsupportedMediaType", $"the fake API server takes strategic merge and merge patches, not {contentType}");
            return;
        }

        JsonObject result;
        lock (_lock)
        {
            if (!_objects["nodes"].TryGetValue("/" + name, out var node))
            {
                result = null!;
            }
            else
            {
                // /status changes only the status: anything else in the patch is ignored, as the API server does.
                var status = node["status"] as JsonObject ?? [];
                node["status"] = status;
                if (patch["status"] is JsonObject ps)
                {
                    Merge(status, ps, strategic, "status");
                }

                var rv = ++_rv;
                node["metadata"]!["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Notify(rv, "nodes", "MODIFIED", (JsonObject)node.DeepClone());
                result = (JsonObject)node.DeepClone();
            }
        }

        LogWrite("PATCH", $"nodes/{name}/status", result is null ? 404 : 200, body);
        await (result is null ? StatusAsync(ctx, 404, "NotFound", $"nodes \"{name}\" not found") : JsonAsync(ctx, result));
    }

    // Strategic merge as the API server applies it to NodeStatus: lists with a merge key (conditions and addresses, by
    // "type") are merged element by element, {"$patch": "delete", ...} removes one, $setElementOrder directives are
    // accepted and ignored; a null value deletes a key; other lists are replaced. A JSON merge patch replaces every list.
    private static void Merge(JsonObject target, JsonObject patch, bool strategic, string path)
    {
        foreach (var (key, value) in patch.ToList())
        {
            if (key.StartsWith("$setElementOrder/", StringComparison.Ordinal) || key == "$retainKeys")
            {
                continue;
            }

            if (value is null)
            {
                target.Remove(key);
            }
            else if (value is JsonObject po && target[key] is JsonObject to)
            {
                Merge(to, po, strategic, $"{path}.{key}");
            }
            else if (strategic && value is JsonArray pa && key is "conditions" or "addresses")
            {
                var list = target[key] as JsonArray ?? [];
                target[key] = list;
                foreach (var item in pa.OfType<JsonObject>())
                {
                    var type = (string?)item["type"];
                    var existing = list.OfType<JsonObject>().FirstOrDefault(e => (string?)e["type"] == type);
                    if ((string?)item["$patch"] == "delete")
                    {
                        if (existing is not null)
                        {
                            list.Remove(existing);
                        }
                    }
                    else if (existing is not null)
                    {
                        Merge(existing, item, strategic, $"{path}.{key}[{type}]");
                    }
                    else
                    {
                        list.Add(item.DeepClone());
                    }
                }
            }
            else
            {
                target[key] = value.DeepClone();
            }
        }
    }

    private async Task CreateEventAsync(HttpContext ctx)
    {
        var ns = (string)ctx.Request.RouteValues["ns"]!;
        if (Failing(ctx, out var failed))
        {
            await failed;
            return;
        }

        if (JsonNode.Parse(await new StreamReader(ctx.Request.Body).ReadToEndAsync()) is not JsonObject ev || ev["metadata"] is not JsonObject meta)
        {
            await StatusAsync(ctx, 400, "BadRequest", "an Event needs metadata");
            return;
        }

        var name = (string?)meta["name"] ?? ((string?)meta["generateName"] ?? "event.") + Guid.NewGuid().ToString("N")[..8];
        JsonObject stored;
        lock (_lock)
        {
            if (_events.ContainsKey($"{ns}/{name}"))
            {
                stored = null!;
            }
            else
            {
                meta["name"] = name;
                meta["namespace"] = ns;
                meta["resourceVersion"] = (++_rv).ToString(System.Globalization.CultureInfo.InvariantCulture);
                meta["uid"] = Guid.NewGuid().ToString();
                _events[$"{ns}/{name}"] = ev;
                _eventWrites++;
                stored = (JsonObject)ev.DeepClone();
            }
        }

        LogWrite("POST", $"events/{ns}/{name}", stored is null ? 409 : 201, (string?)stored?["reason"] ?? string.Empty);
        lock (_lock)
        {
            if (stored is not null && _loseEventAnswers > 0)
            {
                _loseEventAnswers--;
                ctx.Abort(); // stored; the answer never reaches the client
                return;
            }
        }

        await (stored is null ? StatusAsync(ctx, 409, "AlreadyExists", $"events \"{name}\" already exists") : JsonAsync(ctx, stored, 201));
    }

    private async Task PatchEventAsync(HttpContext ctx)
    {
        var (ns, name) = ((string)ctx.Request.RouteValues["ns"]!, (string)ctx.Request.RouteValues["name"]!);
        if (Failing(ctx, out var failed))
        {
            await failed;
            return;
        }

        if (JsonNode.Parse(await new StreamReader(ctx.Request.Body).ReadToEndAsync()) is not JsonObject patch)
        {
            await StatusAsync(ctx, 400, "BadRequest", "the patch is not a JSON object");
            return;
        }

        JsonObject? stored;
        lock (_lock)
        {
            if (_events.TryGetValue($"{ns}/{name}", out var ev))
            {
                if (ctx.Request.Method == "PUT")
                {
                    _events[$"{ns}/{name}"] = ev = patch;
                }
                else
                {
                    Merge(ev, patch, strategic: false, "event");
                }

                ev["metadata"]!["resourceVersion"] = (++_rv).ToString(System.Globalization.CultureInfo.InvariantCulture);
                _eventWrites++;
                stored = (JsonObject)ev.DeepClone();
            }
            else
            {
                stored = null;
            }
        }

        LogWrite(ctx.Request.Method, $"events/{ns}/{name}", stored is null ? 404 : 200, (string?)stored?["reason"] ?? string.Empty);
        await (stored is null ? StatusAsync(ctx, 404, "NotFound", $"events \"{name}\" not found") : JsonAsync(ctx, stored));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    // Builders for the objects tests need.
    public static V1Node Node(string name, bool ready = true, bool unschedulable = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1NodeSpec { Unschedulable = unschedulable },
        Status = new V1NodeStatus
        {
            Conditions = [new V1NodeCondition { Type = "Ready", Status = ready ? "True" : "False", Reason = ready ? "KubeletReady" : "KubeletNotReady", Message = ready ? "kubelet is posting ready status" : "PLEG is not healthy", LastTransitionTime = DateTime.UtcNow }],
        },
    };

    public static V1Service Service(string ns, string name, string clusterIP, params (string Name, int Port, string Protocol)[] ports) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
        Spec = new V1ServiceSpec
        {
            Type = "ClusterIP",
            ClusterIP = clusterIP,
            ClusterIPs = [clusterIP],
            Ports = ports.Select(p => new V1ServicePort { Name = p.Name.Length > 0 ? p.Name : null, Port = p.Port, Protocol = p.Protocol, TargetPort = p.Port }).ToList(),
        },
    };

    public static V1EndpointSlice Slice(string ns, string service, string[] addresses, params (string Name, int Port, string Protocol)[] ports) => new()
    {
        Metadata = new V1ObjectMeta { Name = service + "-abc", NamespaceProperty = ns, Labels = new Dictionary<string, string> { ["kubernetes.io/service-name"] = service } },
        AddressType = "IPv4",
        Endpoints = addresses.Select(a => new V1Endpoint { Addresses = [a], Conditions = new V1EndpointConditions { Ready = true, Serving = true, Terminating = false } }).ToList(),
        Ports = ports.Select(p => new Discoveryv1EndpointPort { Name = p.Name.Length > 0 ? p.Name : null, Port = p.Port, Protocol = p.Protocol }).ToList(),
    };

    public static V1Namespace Namespace(string name, IDictionary<string, string>? annotations = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Annotations = annotations },
    };
}
