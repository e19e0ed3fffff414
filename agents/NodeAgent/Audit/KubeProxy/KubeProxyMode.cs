namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>Which of kube-proxy's rule sets the node-agent audits (NodeAgent:KubeProxy:Mode).</summary>
public enum KubeProxyMode
{
    /// <summary>Ask kube-proxy (/proxyMode on its metrics port); when it does not answer, look at which tables exist.</summary>
    Auto,

    Iptables,

    Nftables,
}
