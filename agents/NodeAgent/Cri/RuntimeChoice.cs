namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>Which container runtimes this node-agent checks and audits (<see cref="RuntimeSelection.RuntimeChoice"/>).</summary>
public sealed record RuntimeChoice(bool Cri, bool Docker);
