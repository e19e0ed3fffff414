using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// The node-agent's view of the cluster: this Node, every Service, EndpointSlice and Namespace, kept current by
/// list + watch (<see cref="KubeApiClient"/>) and relisted when a watch expires (410 Gone) or breaks. List calls have a
/// deadline; watches are renewed every WatchTimeout. Only the compact form the audits read is kept (ServiceSpec,
/// EndpointSliceSpec, namespace annotations), not the API objects. Readers get immutable snapshots.
/// </summary>
public sealed partial class ClusterView : BackgroundService
{
    private readonly KubernetesOptions _options;
    private readonly ILogger<ClusterView> _logger;
    private readonly ConcurrentDictionary<string, ServiceSpec> _services = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, EndpointSliceSpec> _slices = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, string>> _namespaces = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _synced = new(StringComparer.Ordinal);
    private volatile KubeNode? _node;
    private long _version;

    /// <summary>Between attempts to read a kubeconfig that cannot be used: 1 s doubling, at most 30 s.</summary>
    private static readonly RetryBounds Reread = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(30));

    /// <summary>Between attempts to list and watch a kind again: 200 ms doubling, at most 30 s.</summary>
    private static readonly RetryBounds Relist = new(Initial: TimeSpan.FromMilliseconds(200), Max: TimeSpan.FromSeconds(30));

    private readonly TimeProvider _time;

    public ClusterView(IOptions<KubernetesOptions> options, IOptions<NodeOptions> node, CoordinatorConnection connection, TimeProvider time, ILogger<ClusterView> logger)
        : this(options.Value, node.Value.NodeName.Length > 0 ? node.Value.NodeName : connection.Node, logger, time)
    {
    }

    public ClusterView(KubernetesOptions options, string nodeName, ILogger<ClusterView> logger, TimeProvider? time = null)
    {
        _options = options;
        NodeName = nodeName;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public string NodeName { get; }

    /// <summary>Every kind listed at least once.</summary>
    public bool Synced => _synced.Count == 4;

    /// <summary>Why the view is not current, if it is not.</summary>
    public string? Problem
    {
        get => _problem;
        private set
        {
            _problem = value;
            if (value is not null)
            {
                _settled.TrySetResult(); // a first answer, if not the one hoped for
            }
        }
    }

    private volatile string? _problem;
    private readonly TaskCompletionSource _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Waits until the view has a first answer: every kind listed, or a problem known (the API or the file cannot be
    /// read), at most <paramref name="timeout"/>. True when synced. For a reader that would otherwise judge the host
    /// from a view that is merely not read yet (the first seconds after start).
    /// </summary>
    public async Task<bool> WaitSettledAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await _settled.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // not settled in time: the caller judges with what there is
        }

        return Synced;
    }

    private void MarkSynced(string kind)
    {
        _synced[kind] = true;
        if (Synced)
        {
            _settled.TrySetResult();
        }
    }

    public KubeNode? Node => _node;

    private TaskCompletionSource _nodeMarked = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // A Node seen from the watch: when whether it is schedulable or its annotations changed (an admin's uncordon, our
    // mark removed), whoever waits in WaitNodeMarkChangeAsync wakes; the kubelet's status heartbeats wake nobody.
    private void SetNode(KubeNode? n)
    {
        var before = _node;
        _node = n;
        if (before?.Spec?.Unschedulable != n?.Spec?.Unschedulable || !SameAnnotations(before?.Metadata?.Annotations, n?.Metadata?.Annotations) || (before is null) != (n is null))
        {
            Interlocked.Exchange(ref _nodeMarked, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    private static bool SameAnnotations(IDictionary<string, string>? a, IDictionary<string, string>? b) =>
        (a?.Count ?? 0) == (b?.Count ?? 0) && (a is null || a.All(kv => b!.TryGetValue(kv.Key, out var v) && v == kv.Value));

    /// <summary>
    /// Waits <paramref name="timeout"/> on <paramref name="time"/>, or less: until a watch event shows this node's
    /// schedulability or annotations changed (true). Without a running watch it is a plain wait.
    /// </summary>
    public Task<bool> WaitNodeMarkChangeAsync(TimeSpan timeout, TimeProvider time, CancellationToken ct) =>
        WaitNodeMarkChangeAsync(NodeMarkChanged, timeout, time, ct);

    /// <summary>Completes at the next change of the node's schedulability or annotations seen from now: read it before looking at the Node.</summary>
    public Task NodeMarkChanged => Volatile.Read(ref _nodeMarked).Task;

    /// <summary>As the other overload, from a <see cref="NodeMarkChanged"/> read earlier: a change since then wakes it at once.</summary>
    public async Task<bool> WaitNodeMarkChangeAsync(Task changed, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var delay = Task.Delay(timeout, time, cts.Token);
        var first = await Task.WhenAny(changed, delay).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        if (first == delay)
        {
            await delay.ConfigureAwait(false); // cancellation of the caller's token is thrown here
            return false;
        }

        ct.ThrowIfCancellationRequested();
        return true;
    }

    /// <summary>Changes with every event; lets a reader tell whether anything moved.</summary>
    public long Version => Interlocked.Read(ref _version);

    public ClusterModel Model() => new(_services.Values.ToList(), _slices.Values.ToList());

    public IReadOnlyDictionary<string, string> NamespaceAnnotations(string ns) =>
        _namespaces.TryGetValue("/" + ns, out var a) ? a : Empty;

    public int ServiceCount => _services.Count;

    /// <summary>
    /// This host is no Kubernetes node (yet): the Kubernetes source is turned off, or the kubeconfig (the kubelet's) is
    /// not there. The checks that need a cluster say "not applicable" then, instead of waiting for an API that no
    /// configuration names; once puppet writes the kubeconfig, the view reads it and they judge again.
    /// </summary>
    public bool NotANode => !_options.Enabled || (_options.Source == ClusterSource.Api && !File.Exists(_options.Kubeconfig));

    /// <summary>Why <see cref="NotANode"/>, for the checks' messages.</summary>
    public string NotANodeReason => !_options.Enabled ? "NodeAgent:Kubernetes:Enabled is false" : $"no kubeconfig at {_options.Kubeconfig}";

    private static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            Problem = "NodeAgent:Kubernetes:Enabled is false";
            return;
        }

        if (_options.Source == ClusterSource.File)
        {
            await FollowFileAsync(stoppingToken).ConfigureAwait(false);
            return;
        }

        using var client = await ConnectAsync(stoppingToken).ConfigureAwait(false);
        if (client is not null)
        {
            var thisNode = "fieldSelector=" + Uri.EscapeDataString("metadata.name=" + NodeName);
            await Task.WhenAll(
                Informer("nodes", client, "/api/v1/nodes", thisNode, KubeJson.Default.KubeListKubeNode, KubeJson.Default.KubeWatchEventKubeNode,
                    n => n.Metadata, (deleted, n) => SetNode(deleted ? null : n), () => SetNode(null), stoppingToken),
                Informer("services", client, "/api/v1/services", string.Empty, KubeJson.Default.KubeListKubeService, KubeJson.Default.KubeWatchEventKubeService,
                    s => s.Metadata, (deleted, s) => Apply(_services, deleted, s.Metadata, ServiceSpec.From(s)), _services.Clear, stoppingToken),
                Informer("endpointslices", client, "/apis/discovery.k8s.io/v1/endpointslices", string.Empty, KubeJson.Default.KubeListKubeEndpointSlice, KubeJson.Default.KubeWatchEventKubeEndpointSlice,
                    s => s.Metadata, (deleted, s) => Apply(_slices, deleted, s.Metadata, EndpointSliceSpec.From(s)), _slices.Clear, stoppingToken),
                Informer("namespaces", client, "/api/v1/namespaces", string.Empty, KubeJson.Default.KubeListKubeNamespace, KubeJson.Default.KubeWatchEventKubeNamespace,
                    n => n.Metadata, (deleted, n) => Apply(_namespaces, deleted, n.Metadata, Annotations(n)), _namespaces.Clear, stoppingToken)).ConfigureAwait(false);
        }
    }

    /// <summary>The client from the kubeconfig; a kubeconfig that cannot be used (yet: puppet may still be writing the
    /// kubelet's) is read again with backoff. Null only when stopping.</summary>
    private async Task<KubeApiClient?> ConnectAsync(CancellationToken stoppingToken)
    {
        var streak = new RetryStreak(Reread, _time,
            (ex, _) => Log.KubeconfigUnusable(_logger, ex.Message),
            (failures, _) => Log.KubeconfigUsable(_logger, failures));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var client = new KubeApiClient(Kubeconfig.Load(_options.Kubeconfig));
                streak.Succeeded();
                return client;
            }
            catch (KubeconfigException ex)
            {
                Problem = ex.Message;
                if (!await streak.FailedAndWaitAsync(ex, stoppingToken).ConfigureAwait(false))
                {
                    break;
                }
            }
        }

        return null;
    }

    private static IReadOnlyDictionary<string, string> Annotations(KubeNamespace n) => n.Metadata?.Annotations is { Count: > 0 } a ? a : Empty;

    /// <summary>The snapshot file: read at start and whenever its time or size changes; a bad read keeps the last good view.</summary>
    private async Task FollowFileAsync(CancellationToken stoppingToken)
    {
        var path = _options.File;
        (DateTime, long)? seen = null;
        string? lastProblem = null;
        using var timer = new PeriodicTimer(_options.FileInterval);
        do
        {
            try
            {
                var info = new FileInfo(path);
                var stamp = info.Exists ? (info.LastWriteTimeUtc, info.Length) : ((DateTime, long)?)null;
                if (stamp is null)
                {
                    throw new FileNotFoundException($"cluster snapshot {path} does not exist");
                }

                if (stamp != seen)
                {
                    // Bounded, and refused when it holds no Service: a file replaced by a Pod list is a problem the
                    // audits wait on, never an empty cluster they would call clean.
                    var snapshot = KubectlSnapshot.ReadServicesFile("NodeAgent:Kubernetes:File", path);
                    Replace(_services, snapshot.Services.Select(s => (s.Metadata, (ServiceSpec?)ServiceSpec.From(s))));
                    Replace(_slices, snapshot.EndpointSlices.Select(s => (s.Metadata, EndpointSliceSpec.From(s))));
                    Replace(_namespaces, snapshot.Namespaces.Select(n => (n.Metadata, (IReadOnlyDictionary<string, string>?)Annotations(n))));
                    SetNode(snapshot.Nodes.FirstOrDefault(n => n.Metadata?.Name == NodeName));
                    foreach (var kind in new[] { "nodes", "services", "endpointslices", "namespaces" })
                    {
                        MarkSynced(kind);
                    }

                    Interlocked.Increment(ref _version);
                    seen = stamp;
                    Problem = null;
                    lastProblem = null;
                    Log.SnapshotRead(_logger, path, snapshot.Services.Count, snapshot.EndpointSlices.Count, snapshot.Namespaces.Count);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Problem = ex.Message;
                if (ex.Message != lastProblem)
                {
                    Log.SnapshotUnreadable(_logger, ex.Message);
                    lastProblem = ex.Message;
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private static string Key(KubeMeta? meta) => $"{meta?.Namespace}/{meta?.Name}";

    private static void Replace<T>(ConcurrentDictionary<string, T> map, IEnumerable<(KubeMeta? Meta, T? Value)> items)
        where T : class
    {
        var fresh = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var (meta, value) in items)
        {
            if (value is not null)
            {
                fresh[Key(meta)] = value;
            }
        }

        foreach (var key in map.Keys.Where(k => !fresh.ContainsKey(k)).ToList())
        {
            map.TryRemove(key, out _);
        }

        foreach (var (key, item) in fresh)
        {
            map[key] = item;
        }
    }

    /// <summary>Keeps the compact form of an object (null: nothing the audits use, e.g. an FQDN slice).</summary>
    private static void Apply<T>(ConcurrentDictionary<string, T> map, bool deleted, KubeMeta? meta, T? value)
        where T : class
    {
        var key = Key(meta);
        if (deleted || value is null)
        {
            map.TryRemove(key, out _);
        }
        else
        {
            map[key] = value;
        }
    }

    private async Task Informer<T>(
        string kind,
        KubeApiClient client,
        string path,
        string query,
        JsonTypeInfo<KubeList<T>> listInfo,
        JsonTypeInfo<KubeWatchEvent<T>> watchInfo,
        Func<T, KubeMeta?> meta,
        Action<bool, T> apply,
        Action clear,
        CancellationToken stoppingToken)
        where T : class
    {
        var streak = new RetryStreak(Relist, _time, (ex, _) => Log.ListWatchFailed(_logger, kind, ex.Message), (_, _) => Log.Recovered(_logger, kind));
        var list = query.Length > 0 ? $"{path}?{query}" : path;
        var watchUrl = $"{path}?{(query.Length > 0 ? query + "&" : string.Empty)}watch=1&allowWatchBookmarks=true&timeoutSeconds="
            + ((int)_options.WatchTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // List with a deadline, then watch from its resourceVersion.
                string? rv;
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    cts.CancelAfter(_options.RequestTimeout);
                    var body = await client.GetAsync(list, listInfo, cts.Token).ConfigureAwait(false);
                    clear();
                    foreach (var item in body.Items ?? [])
                    {
                        apply(false, item);
                    }

                    rv = body.Metadata?.ResourceVersion;
                }

                MarkSynced(kind);
                Interlocked.Increment(ref _version);
                streak.Succeeded();
                Problem = null;
                while (!stoppingToken.IsCancellationRequested)
                {
                    using var watchCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    watchCts.CancelAfter(_options.WatchTimeout + _options.RequestTimeout); // the server ends it at WatchTimeout; this is the backstop
                    var watch = $"{watchUrl}&resourceVersion={Uri.EscapeDataString(rv ?? string.Empty)}";
                    await foreach (var e in client.WatchAsync(watch, watchInfo, watchCts.Token).ConfigureAwait(false))
                    {
                        if (e.Object is not { } item)
                        {
                            continue;
                        }

                        if (e.Type is "ADDED" or "MODIFIED" or "DELETED")
                        {
                            apply(e.Type == "DELETED", item);
                            Interlocked.Increment(ref _version);
                        }

                        rv = meta(item)?.ResourceVersion ?? rv;
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (KubeClient.IsApiFailure(ex))
            {
                Problem = $"{kind}: {ex.Message}";
                // A 410 (the watch's resourceVersion is too old) lists again at once and is no failure; anything else backs off.
                if (ex is not KubeApiException { StatusCode: 410 } && !await streak.FailedAndWaitAsync(ex, stoppingToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.ClusterListWatchFailed, LogLevel.Warning, "Kubernetes {Kind}: list/watch failed: {Reason}; retrying with backoff")]
        public static partial void ListWatchFailed(ILogger logger, string kind, string reason);

        [LoggerMessage(EventIds.ClusterSnapshotRead, LogLevel.Information, "cluster snapshot {Path}: {Services} services, {Slices} endpoint slices, {Namespaces} namespaces")]
        public static partial void SnapshotRead(ILogger logger, string path, int services, int slices, int namespaces);

        [LoggerMessage(EventIds.ClusterSnapshotUnreadable, LogLevel.Warning, "cannot use the cluster snapshot: {Reason}; keeping the last good one")]
        public static partial void SnapshotUnreadable(ILogger logger, string reason);

        [LoggerMessage(EventIds.ClusterKubeconfigUnusable, LogLevel.Warning, "cannot use the kubeconfig: {Reason}; reading it again with backoff")]
        public static partial void KubeconfigUnusable(ILogger logger, string reason);

        [LoggerMessage(EventIds.ClusterKubeconfigUsable, LogLevel.Information, "the kubeconfig can be used again (after {Failures} failed attempts)")]
        public static partial void KubeconfigUsable(ILogger logger, int failures);

        [LoggerMessage(EventIds.ClusterRecovered, LogLevel.Information, "Kubernetes {Kind}: listing and watching again")]
        public static partial void Recovered(ILogger logger, string kind);
    }
}
