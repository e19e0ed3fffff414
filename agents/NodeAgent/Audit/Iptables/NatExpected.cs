using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>What kube-proxy should have written for the cluster's Services, and what the cluster view alone shows wrong.</summary>
internal sealed class NatExpected(int services)
{
    /// <summary>Each destination of each Service port, with whether it wants a nat rule or a REJECT.</summary>
    public List<NatExpectation> Rules { get; } = new(services * 2);

    /// <summary>Each Service port with endpoints: the endpoints its KUBE-SVC chain must send to.</summary>
    public List<NatBackends> Backends { get; } = [];

    /// <summary>Findings from the Services alone (nodeport-forbidden), before any rule is looked at.</summary>
    public List<Finding> Findings { get; } = [];
}
