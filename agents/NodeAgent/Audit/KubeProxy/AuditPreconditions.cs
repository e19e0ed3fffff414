using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// What the audits against the cluster's Services (iptables, nftables, conntrack) need before they look at the node:
/// kube-proxy in the mode the audit is for, a cluster view that is a node's and has listed the Services. When one is
/// missing, the check's state says why.
/// </summary>
internal static class AuditPreconditions
{
    /// <summary>Whether <paramref name="check"/> is for the mode kube-proxy runs in; when not, the check is clean and says so.</summary>
    public static bool InUse(AgentState state, string check, KubeProxyMode wanted, KubeProxyMode mode, string how)
    {
        if (mode == wanted)
        {
            return true;
        }

        state.SetFindings(check, []);
        state.SetCheck(check, CheckState.Ok, $"not in use: kube-proxy runs in {mode.ToString().ToLowerInvariant()} mode ({how})");
        return false;
    }

    /// <summary>Whether <paramref name="check"/> can audit now; when not, its state is set: not applicable (not a node) or waiting for the API.</summary>
    public static bool ClusterReady(ClusterView cluster, AgentState state, string check)
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
