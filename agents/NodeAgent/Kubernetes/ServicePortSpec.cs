using k8s.Models;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

public sealed record ServicePortSpec(string Name, int Port, string Protocol, int NodePort);
