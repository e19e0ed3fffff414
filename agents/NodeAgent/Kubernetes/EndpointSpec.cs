namespace Toolforge.Agents.NodeAgent.Kubernetes;

public sealed record EndpointSpec(string Address, bool Ready, bool Serving, bool Terminating, string? NodeName);
