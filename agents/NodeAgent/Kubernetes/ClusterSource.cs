namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>Where the node-agent learns the cluster's Services, EndpointSlices, Namespaces and its Node.</summary>
public enum ClusterSource
{
    /// <summary>List and watch the API server (with <see cref="KubernetesOptions.Kubeconfig"/>).</summary>
    Api,

    /// <summary>
    /// A snapshot file: what `kubectl get svc,endpointslices,namespaces -A -o json` prints (a Node object may be in it
    /// too), read again whenever it changes. For an air-gapped node, or a host that is not a node at all (the demo).
    /// </summary>
    File,
}
