using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.NodeAgent.Audit.Conntrack;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Checks.Images;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.NodeAgent.Remediation;

namespace Toolforge.Agents.NodeAgent.Hosting;

public static class NodeAgentServiceCollectionExtensions
{
    /// <summary>
    /// The node-agent: one line per feature folder, each registering its own options (its own section below NodeAgent),
    /// services and checks. The daemon and `check` both run exactly this. A new check is a folder with its
    /// AddXxx and one line here.
    /// </summary>
    public static IServiceCollection AddNodeAgent(this IServiceCollection services, IConfiguration configuration) => services
        .AddNodeOptions(configuration)
        .AddSystemd()
        .AddKubernetes(configuration)
        .AddKubelet(configuration)
        .AddCri(configuration)
        .AddDocker(configuration)
        .AddKubeProxy(configuration)
        .AddIptablesAudit(configuration)
        .AddNftablesAudit(configuration)
        .AddConntrack(configuration)
        .AddStuckProcesses(configuration)
        .AddNodeImages(configuration)
        .AddTenantPolicy(configuration)
        .AddJournalRules(configuration)
        .AddRemediation(configuration)
        .AddNodeConditions(configuration);
}
