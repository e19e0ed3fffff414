using System.Globalization;
using Microsoft.Extensions.Options;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// The API client the writers share (Node status, Events), built from the kubeconfig on first use (a kubeconfig that
/// cannot be used throws <see cref="KubeconfigException"/> each time until it can). The kubelet's own kubeconfig is
/// enough: under NodeRestriction a node may patch its own Node's status and create and patch Events. Every call is
/// bounded by <see cref="KubernetesOptions.RequestTimeout"/> through <see cref="Deadline"/>.
/// </summary>
public sealed class KubeClient(IOptions<KubernetesOptions> options) : IDisposable
{
    private readonly object _lock = new();
    private KubeApiClient? _client;

    public KubeApiClient Api
    {
        get
        {
            lock (_lock)
            {
                return _client ??= new KubeApiClient(Kubeconfig.Load(options.Value.Kubeconfig));
            }
        }
    }

    /// <summary>A token that ends at the request timeout (or with <paramref name="ct"/>).</summary>
    public CancellationTokenSource Deadline(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(options.Value.RequestTimeout);
        return cts;
    }

    /// <summary>
    /// Every pod bound to <paramref name="node"/> (fieldSelector spec.nodeName), <paramref name="pageSize"/> at a time, each
    /// page bounded by the request timeout; more than <paramref name="maxPods"/> throws <see cref="TooManyPodsException"/>
    /// naming <paramref name="maxKey"/> (memory stays bounded); with <paramref name="keep"/>, only the pods it keeps are
    /// kept and counted.
    /// </summary>
    public async Task<List<KubePod>> ListNodePodsAsync(string node, int pageSize, int maxPods, string maxKey, CancellationToken ct, Func<KubePod, bool>? keep = null)
    {
        var pods = new List<KubePod>();
        string? next = null;
        do
        {
            var query = $"/api/v1/pods?fieldSelector={Uri.EscapeDataString("spec.nodeName=" + node)}&limit={pageSize.ToString(CultureInfo.InvariantCulture)}"
                + (next is null ? string.Empty : "&continue=" + Uri.EscapeDataString(next));
            using var cts = Deadline(ct);
            var page = await Api.GetAsync(query, KubeJson.Default.KubeListKubePod, cts.Token).ConfigureAwait(false);
            pods.AddRange(keep is null ? page.Items ?? [] : (page.Items ?? []).Where(keep));
            if (pods.Count > maxPods)
            {
                throw new TooManyPodsException($"more than {maxPods.ToString(CultureInfo.InvariantCulture)} pods on {node} ({maxKey})");
            }

            next = page.Metadata?.Continue is { Length: > 0 } c ? c : null;
        }
        while (next is not null);
        return pods;
    }

    /// <summary>Why a call failed, in one line for a check's message and the log.</summary>
    public string Why(Exception ex) => ex is OperationCanceledException
        ? $"no answer within {options.Value.RequestTimeout.TotalSeconds:0}s"
        : ex.Message;

    /// <summary>The failures of a call to the API server a writer retries (anything else is a bug).</summary>
    public static bool IsApiFailure(Exception ex) =>
        ex is KubeApiException or HttpRequestException or OperationCanceledException or IOException or UnauthorizedAccessException or KubeconfigException or System.Text.Json.JsonException;

    public void Dispose()
    {
        lock (_lock)
        {
            _client?.Dispose();
            _client = null;
        }
    }
}

/// <summary>More pods on a node than the caller takes (<see cref="KubeClient.ListNodePodsAsync"/>).</summary>
public sealed class TooManyPodsException(string message) : Exception(message);
