using k8s;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// The API client the writers share (Node status, Events), built from the kubeconfig on first use. The kubelet's own
/// kubeconfig is enough: under NodeRestriction a node may patch its own Node's status and create and patch Events.
/// Every call is bounded by <see cref="KubernetesOptions.RequestTimeout"/> through <see cref="Deadline"/>.
/// </summary>
public sealed class KubeClient(IOptions<NodeAgentOptions> options) : IDisposable
{
    private readonly object _lock = new();
    private k8s.Kubernetes? _client;

    public IKubernetes Api
    {
        get
        {
            lock (_lock)
            {
                return _client ??= new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(options.Value.Kubernetes.Kubeconfig));
            }
        }
    }

    /// <summary>A token that ends at the request timeout (or with <paramref name="ct"/>).</summary>
    public CancellationTokenSource Deadline(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(options.Value.Kubernetes.RequestTimeout);
        return cts;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _client?.Dispose();
            _client = null;
        }
    }
}
