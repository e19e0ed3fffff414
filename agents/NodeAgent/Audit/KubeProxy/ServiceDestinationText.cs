namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>How a finding names a <see cref="ServiceDestination"/>: "cluster IP", "external IP", "load balancer IP", "node port".</summary>
internal static class ServiceDestinationText
{
    public static string Text(this ServiceDestination destination) => destination switch
    {
        ServiceDestination.ClusterIP => "cluster IP",
        ServiceDestination.ExternalIP => "external IP",
        ServiceDestination.LoadBalancerIP => "load balancer IP",
        _ => "node port",
    };
}
