namespace Toolforge.Agents.NodeAgent.Kubernetes;

public sealed record ServicePortSpec(string Name, int Port, string Protocol, int NodePort);
