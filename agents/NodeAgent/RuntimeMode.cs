namespace Toolforge.Agents.NodeAgent;

/// <summary>Which container runtime the node-agent checks and audits (NodeAgent:Runtime).</summary>
public enum RuntimeMode
{
    /// <summary>Whatever socket exists, CRI first; with neither, CRI (and it is reported down).</summary>
    Auto,

    /// <summary>The CRI runtime at NodeAgent:Cri:Endpoint (containerd, cri-o).</summary>
    Cri,

    /// <summary>The Docker Engine at NodeAgent:Docker:Endpoint.</summary>
    Docker,

    /// <summary>Both: a node that still runs dockerd for builds next to containerd.</summary>
    Both,
}
