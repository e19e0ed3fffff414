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
