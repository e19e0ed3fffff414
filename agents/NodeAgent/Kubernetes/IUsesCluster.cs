namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>A check that reads the <see cref="ClusterView"/>: a one-shot `check` starts the view (and waits for it) only for these.</summary>
internal interface IUsesCluster;
