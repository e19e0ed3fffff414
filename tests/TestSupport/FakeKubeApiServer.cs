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
/// </summary>
public sealed class FakeKubeApiServer : IAsyncDisposable
{
    private sealed record Kind(string Path, string ListKind, string ApiVersion, bool Namespaced);

    private static readonly Dictionary<string, Kind> Kinds = new()
    {
        ["nodes"] = new("/api/v1/nodes", "NodeList", "v1", false),
        ["services"] = new("/api/v1/services", "ServiceList", "v1", true),
        ["endpointslices"] = new("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSliceList", "discovery.k8s.io/v1", true),
        ["namespaces"] = new("/api/v1/namespaces", "NamespaceList", "v1", false),
    };

    private readonly object _lock = new();
    private readonly Dictionary<string, Dictionary<string, JsonObject>> _objects = Kinds.Keys.ToDictionary(k => k, _ => new Dictionary<string, JsonObject>());
    private readonly List<(long Rv, string Kind, string Type, JsonObject Object)> _history = [];
    private readonly List<(string Kind, Channel<(long, string, JsonObject)> Channel)> _watchers = [];
    private readonly WebApplication _app;
    private long _rv = 100;

    private FakeKubeApiServer(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public string Url => $"http://127.0.0.1:{Port}";

    public int WatchRequests { get; private set; }

    public static async Task<FakeKubeApiServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new FakeKubeApiServer(app);
        foreach (var (name, kind) in Kinds)
        {
            app.MapGet(kind.Path, ctx => server.HandleAsync(name, kind, ctx));
        }

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
        var nameFilter = q["fieldSelector"].ToString() is { Length: > 0 } fs && fs.StartsWith("metadata.name=", StringComparison.Ordinal) ? fs["metadata.name=".Length..] : null;
        bool Matches(JsonObject o) => nameFilter is null || (string?)o["metadata"]?["name"] == nameFilter;
        if (q["watch"] == "true" || q["watch"] == "1")
        {
            await WatchAsync(kind, ctx, Matches);
            return;
        }

        JsonArray items;
        long rv;
        lock (_lock)
        {
            items = new JsonArray(_objects[kind].Values.Where(Matches).Select(o => (JsonNode)o.DeepClone()).ToArray());
            rv = _rv;
        }

        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject
        {
            ["kind"] = k.ListKind,
            ["apiVersion"] = k.ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            ["items"] = items,
        }.ToJsonString());
    }

    private async Task WatchAsync(string kind, HttpContext ctx, Func<JsonObject, bool> matches)
    {
        var from = long.TryParse(ctx.Request.Query["resourceVersion"], out var r) ? r : 0;
        var timeout = int.TryParse(ctx.Request.Query["timeoutSeconds"], out var t) ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(5);
        var channel = Channel.CreateUnbounded<(long, string, JsonObject)>();
        lock (_lock)
        {
            WatchRequests++;
            foreach (var h in _history.Where(h => h.Kind == kind && h.Rv > from))
            {
                channel.Writer.TryWrite((h.Rv, h.Type, h.Object));
            }

            _watchers.Add((kind, channel));
        }

        ctx.Response.ContentType = "application/json";
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
