using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// kube-proxy's name of a Service port: "namespace/name:port", or "namespace/name" for an unnamed port. What kube-proxy
/// hashes its chain names from, and the subject of every finding about the port.
/// </summary>
internal static class ServicePortName
{
    public static string Of(string ns, string name, string? portName) =>
        string.IsNullOrEmpty(portName) ? $"{ns}/{name}" : $"{ns}/{name}:{portName}";

    public static string Of(ServiceSpec service, ServicePortSpec port) => Of(service.Namespace, service.Name, port.Name);
}
