using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// A Service port's KUBE-SVC chain (by its hash) and the endpoints it must send to: <see cref="Targets"/>, sorted and
/// without repeats, as <see cref="NatKeys.TargetKey(NameTable, UsableEndpoint)"/> numbers.
/// </summary>
internal sealed class NatBackends(ChainHash hash, ServiceSpec service, ServicePortSpec port, long[] targets)
{
    public ChainHash Hash { get; } = hash;

    public string ServicePortName => KubeProxy.ServicePortName.Of(service, port);

    public long[] Targets { get; } = targets;
}
