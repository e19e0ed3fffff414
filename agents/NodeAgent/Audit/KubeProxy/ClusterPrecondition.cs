using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// What every audit against the cluster's Services (iptables, nftables, conntrack) needs before it looks at the node:
/// a cluster view that is a node's and has listed the Services. When it has not, the check's state says why.
/// </summary>
internal static class ClusterPrecondition
{
    /// <summary>Whether <paramref name="check"/> can audit now; when not, its state is set: not applicable (not a node) or waiting for the API.</summary>
    public static bool Met(ClusterView cluster, AgentState state, string check)
    {
        if (cluster.NotANode)
        {
            state.SetCheck(check, CheckState.Unknown, $"not applicable on this host ({cluster.NotANodeReason})", details: Common.Checks.CheckDetails.NotApplicable, quiet: true);
            return false;
        }

        if (!cluster.Synced)
        {
            state.SetCheck(check, CheckState.Unknown, $"waiting for the Kubernetes API: {cluster.Problem ?? "not listed yet"}");
            return false;
        }

        return true;
    }
}
