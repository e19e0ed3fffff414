using System.Collections.Concurrent;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// The node-agent's view of the cluster: this Node, every Service, EndpointSlice and Namespace, kept current by
/// list + watch (KubernetesClient) and relisted when a watch expires (410 Gone) or breaks. List calls have a
/// deadline; watches are renewed every WatchTimeout. Readers get immutable snapshots.
/// </summary>
public sealed partial class ClusterView : BackgroundService
{
    private readonly KubernetesOptions _options;
    private readonly ILogger<ClusterView> _logger;
    private readonly ConcurrentDictionary<string, V1Service> _services = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, V1EndpointSlice> _slices = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, V1Namespace> _namespaces = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _synced = new(StringComparer.Ordinal);
    private volatile V1Node? _node;
    private long _version;

    public ClusterView(IOptions<NodeAgentOptions> options, CoordinatorConnection connection, ILogger<ClusterView> logger)
        : this(options.Value.Kubernetes, options.Value.NodeName.Length > 0 ? options.Value.NodeName : connection.Node, logger)
    {
    }

    public ClusterView(KubernetesOptions options, string nodeName, ILogger<ClusterView> logger)
    {
        _options = options;
        NodeName = nodeName;
        _logger = logger;
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

    public V1Node? Node => _node;

    /// <summary>Changes with every event; lets a reader tell whether anything moved.</summary>
    public long Version => Interlocked.Read(ref _version);

    public ClusterModel Model() => new(
        _services.Values.Select(ServiceSpec.From).ToList(),
        _slices.Values.Select(EndpointSliceSpec.From).OfType<EndpointSliceSpec>().ToList());

    public IReadOnlyDictionary<string, string> NamespaceAnnotations(string ns) =>
        _namespaces.TryGetValue("/" + ns, out var n) && n.Metadata?.Annotations is { } a ? new Dictionary<string, string>(a) : new Dictionary<string, string>();

    public IReadOnlyCollection<V1Service> Services => _services.Values.ToList();

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

        using var client = new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(_options.Kubeconfig));
        var watchSeconds = (int)_options.WatchTimeout.TotalSeconds;
        var node = $"metadata.name={NodeName}";
        await Task.WhenAll(
            Informer<V1Node, V1NodeList>("nodes",
                t => client.CoreV1.ListNodeAsync(fieldSelector: node, cancellationToken: t),
                (rv, onError, t) => client.CoreV1.WatchListNodeAsync(fieldSelector: node, resourceVersion: rv, timeoutSeconds: watchSeconds, onError: onError, cancellationToken: t),
                l => l.Items, l => l.Metadata?.ResourceVersion, (type, n) => _node = type == WatchEventType.Deleted ? null : n, () => _node = null, stoppingToken),
            Informer<V1Service, V1ServiceList>("services",
                t => client.CoreV1.ListServiceForAllNamespacesAsync(cancellationToken: t),
                (rv, onError, t) => client.CoreV1.WatchListServiceForAllNamespacesAsync(resourceVersion: rv, timeoutSeconds: watchSeconds, onError: onError, cancellationToken: t),
                l => l.Items, l => l.Metadata?.ResourceVersion, (type, s) => Apply(_services, type, s), _services.Clear, stoppingToken),
            Informer<V1EndpointSlice, V1EndpointSliceList>("endpointslices",
                t => client.DiscoveryV1.ListEndpointSliceForAllNamespacesAsync(cancellationToken: t),
                (rv, onError, t) => client.DiscoveryV1.WatchListEndpointSliceForAllNamespacesAsync(resourceVersion: rv, timeoutSeconds: watchSeconds, onError: onError, cancellationToken: t),
                l => l.Items, l => l.Metadata?.ResourceVersion, (type, s) => Apply(_slices, type, s), _slices.Clear, stoppingToken),
            Informer<V1Namespace, V1NamespaceList>("namespaces",
                t => client.CoreV1.ListNamespaceAsync(cancellationToken: t),
                (rv, onError, t) => client.CoreV1.WatchListNamespaceAsync(resourceVersion: rv, timeoutSeconds: watchSeconds, onError: onError, cancellationToken: t),
                l => l.Items, l => l.Metadata?.ResourceVersion, (type, n) => Apply(_namespaces, type, n), _namespaces.Clear, stoppingToken)).ConfigureAwait(false);
    }

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
                    var snapshot = KubectlSnapshot.Read([(path, await File.ReadAllTextAsync(path, stoppingToken).ConfigureAwait(false))]);
                    Replace(_services, snapshot.Services);
                    Replace(_slices, snapshot.EndpointSlices);
                    Replace(_namespaces, snapshot.Namespaces);
                    _node = snapshot.Nodes.FirstOrDefault(n => n.Metadata?.Name == NodeName);
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

    private static void Replace<T>(ConcurrentDictionary<string, T> map, IEnumerable<T> items)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        var fresh = items.ToDictionary(i => $"{i.Metadata?.NamespaceProperty}/{i.Metadata?.Name}", StringComparer.Ordinal);
        foreach (var key in map.Keys.Where(k => !fresh.ContainsKey(k)).ToList())
        {
            map.TryRemove(key, out _);
        }

        foreach (var (key, item) in fresh)
        {
            map[key] = item;
        }
    }

    private void Apply<T>(ConcurrentDictionary<string, T> map, WatchEventType type, T item)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        var key = $"{item.Metadata?.NamespaceProperty}/{item.Metadata?.Name}";
        if (type == WatchEventType.Deleted)
        {
            map.TryRemove(key, out _);
        }
        else
        {
            map[key] = item;
        }
    }

    private async Task Informer<T, TList>(
        string kind,
        Func<CancellationToken, Task<TList>> list,
        Func<string?, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType, T)>> watch,
        Func<TList, IList<T>> items,
        Func<TList, string?> version,
        Action<WatchEventType, T> apply,
        Action clear,
        CancellationToken stoppingToken)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // List with a deadline, then watch from its resourceVersion.
                string? rv;
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    cts.CancelAfter(_options.RequestTimeout);
                    var body = await list(cts.Token).ConfigureAwait(false);
                    clear();
                    foreach (var item in items(body))
                    {
                        apply(WatchEventType.Added, item);
                    }

                    rv = version(body);
                }

                MarkSynced(kind);
                Interlocked.Increment(ref _version);
                if (backoff.Failures > 0)
                {
                    Log.Recovered(_logger, kind);
                }

                backoff.Reset();
                Problem = null;
                while (!stoppingToken.IsCancellationRequested)
                {
                    using var watchCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    watchCts.CancelAfter(_options.WatchTimeout + _options.RequestTimeout); // the server ends it at WatchTimeout; this is the backstop
                    Exception? watchError = null;
                    await foreach (var (type, item) in watch(rv, e => watchError = e, watchCts.Token).ConfigureAwait(false))
                    {
                        if (type == WatchEventType.Error)
                        {
                            throw new WatchExpiredException(kind);
                        }

                        if (type != WatchEventType.Bookmark)
                        {
                            apply(type, item);
                            Interlocked.Increment(ref _version);
                        }

                        rv = item.Metadata?.ResourceVersion ?? rv;
                    }

                    if (watchError is not null)
                    {
                        throw watchError;
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is HttpOperationException or HttpRequestException or IOException or OperationCanceledException
                or WatchExpiredException or KubernetesException or System.Text.Json.JsonException or k8s.Exceptions.KubeConfigException)
            {
                Problem = $"{kind}: {ex.Message}";
                if (backoff.Failures == 0 && ex is not WatchExpiredException)
                {
                    Log.ListWatchFailed(_logger, kind, ex.Message);
                }

                await Task.Delay(backoff.Next(), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private sealed class WatchExpiredException(string kind) : Exception($"{kind}: watch expired; listing again");

    private static partial class Log
    {
        [LoggerMessage(3101, LogLevel.Warning, "Kubernetes {Kind}: list/watch failed: {Reason}; retrying with backoff")]
        public static partial void ListWatchFailed(ILogger logger, string kind, string reason);

        [LoggerMessage(3103, LogLevel.Information, "cluster snapshot {Path}: {Services} services, {Slices} endpoint slices, {Namespaces} namespaces")]
        public static partial void SnapshotRead(ILogger logger, string path, int services, int slices, int namespaces);

        [LoggerMessage(3104, LogLevel.Warning, "cannot use the cluster snapshot: {Reason}; keeping the last good one")]
        public static partial void SnapshotUnreadable(ILogger logger, string reason);

        [LoggerMessage(3102, LogLevel.Information, "Kubernetes {Kind}: listing and watching again")]
        public static partial void Recovered(ILogger logger, string kind);
    }
}
