namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// Where kube-proxy takes a Service port's traffic from: its cluster IP (internal traffic), or an external IP, a load
/// balancer IP or the node port (external traffic). Each mode's rules and findings name them alike.
/// </summary>
internal enum ServiceDestination : byte
{
    ClusterIP,
    ExternalIP,
    LoadBalancerIP,
    NodePort,
}
