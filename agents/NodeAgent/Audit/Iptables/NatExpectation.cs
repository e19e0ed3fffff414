using System.Globalization;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// One destination of a Service port (its cluster IP, an external or load balancer IP, its node port) and what
/// kube-proxy should have for it: a nat rule to the port's KUBE-SVC chain when it has endpoints (<see cref="WantNat"/>),
/// a filter REJECT when it has none, a filter DROP (<see cref="WantDrop"/>) for a cluster IP under
/// internalTrafficPolicy Local whose endpoints are all on other nodes (kube-proxy's "has no local endpoints").
/// </summary>
internal record struct NatExpectation
{
    public ServiceSpec Service;
    public ServicePortSpec Port;
    public ServiceDestination What;
    public string Address; // "*" for a node port
    public string Protocol;
    public int DestinationPort;
    public DestKey Key;
    public bool WantNat;
    public bool WantDrop;
    public ChainHash Hash;
    public ChainHash? OldHash; // kube-proxy <= 1.9's "ns/name:" for an unnamed port

    public readonly string ServicePortName => KubeProxy.ServicePortName.Of(Service, Port);

    public readonly string Destination => $"{Address}:{DestinationPort.ToString(CultureInfo.InvariantCulture)}/{Protocol}";

    public readonly string Subject => $"{ServicePortName} {Destination}";
}
