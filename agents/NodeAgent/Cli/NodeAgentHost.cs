using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Toolforge.Agents.Common.Reporting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Audit.Conntrack;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;
using Toolforge.Agents.NodeAgent.Remediation;

namespace Toolforge.Agents.NodeAgent;

/// <summary>
/// toolforge-node-agent's command line and wiring: the daemon (no subcommand) with its checks and audits, each on its
/// own interval with a hard timeout, and the offline audits.
/// </summary>
internal static class NodeAgentHost
{
    public const int DefaultMetricsPort = 9502;

    public static Task<int> RunAsync(string[] args)
    {
        var daemon = DaemonInfo.NodeAgent;
        var root = ProgramCommandLine.Root(daemon.Name,
            "toolforge-node-agent: kubelet and container runtime health, kube-proxy's rules against the Services, tenant policy, "
            + $"journal rules, guarded remediation. With no subcommand it runs the daemon, reading {daemon.DefaultConfigPath} (or --config).");
        var config = ProgramCommandLine.ConfigOption(daemon);
        root.Options.Add(config);
        ProgramCommandLine.HostsDaemon(root);
        root.SetAction((pr, _) => AgentDaemon.RunAsync(daemon, pr.GetValue(config), DefaultMetricsPort, Configure));
        root.Subcommands.Add(AuditCommand.Create());
        root.Subcommands.Add(CheckCommand.Create(config));
        return ProgramCommandLine.InvokeAsync(root, args);
    }

    public static void Configure(HostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<NodeAgentOptions>(builder.Configuration, NodeAgentOptions.Section, (c, o) => c.Bind(o));
        services.AddHttpClient("kubelet");
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<NodeAgentOptions>>().Value;
            return new SystemdClient(o.DBusAddress, o.DBusTimeout);
        });
        services.AddSingleton<ClusterView>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterView>());

        var o = OptionsRegistration.GetExactly<NodeAgentOptions>(builder.Configuration.GetSection(NodeAgentOptions.Section), (c, o) => c.Bind(o));
        if (!OperatingSystem.IsLinux())
        {
            // D-Bus, iptables and the journal are Linux's; the Docker and Kubernetes checks still run.
            services.AddHostedService<UnsupportedChecks>();
        }

        if (o.Kubelet.Enabled)
        {
            services.AddHostedService(sp => ActivatorUtilities.CreateInstance<KubeletCheck>(sp, sp.GetRequiredService<ClusterView>()));
        }

        // The container runtime: CRI (containerd), Docker, or both; auto picks whatever socket exists, CRI first.
        var (useCri, useDocker) = RuntimeSelection.Resolve(o.Runtime, o.Cri.Endpoint, o.Docker.Endpoint, File.Exists);
        useDocker &= o.Docker.Enabled;
        if (useCri)
        {
            services.AddHostedService(sp => new CriRuntimeCheck(sp.GetRequiredService<IOptions<NodeAgentOptions>>(), sp.GetRequiredService<AgentState>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CriRuntimeCheck>>(),
                OperatingSystem.IsLinux() ? sp.GetRequiredService<SystemdClient>() : null));
        }

        if (useDocker)
        {
            services.AddHostedService(sp => new DockerCheck(sp.GetRequiredService<IOptions<NodeAgentOptions>>(), sp.GetRequiredService<AgentState>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<DockerCheck>>(),
                OperatingSystem.IsLinux() ? sp.GetRequiredService<SystemdClient>() : null));
        }

        services.AddSingleton<IReadOnlyList<IPodContainerSource>>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<NodeAgentOptions>>().Value;
            var sources = new List<IPodContainerSource>();
            if (useCri)
            {
                sources.Add(new CriPodContainers(options.Cri));
            }

            if (useDocker)
            {
                sources.Add(new DockerPodContainers(options.Docker));
            }

            return sources;
        });

        // kube-proxy's rules: the audit of the mode it runs in (auto: both checks, each says "not in use" when it is not).
        services.AddHttpClient("kube-proxy");
        services.AddSingleton<ProxyModeDetector>();
        if (o.Iptables.Enabled && OperatingSystem.IsLinux() && o.KubeProxy.Mode != KubeProxyMode.Nftables)
        {
            services.AddHostedService(sp => ActivatorUtilities.CreateInstance<IptablesAuditCheck>(sp, sp.GetRequiredService<ProxyModeDetector>()));
        }

        if (o.Nftables.Enabled && OperatingSystem.IsLinux() && o.KubeProxy.Mode != KubeProxyMode.Iptables)
        {
            services.AddHostedService<NftablesAuditCheck>();
        }

        if (o.Conntrack.Enabled && OperatingSystem.IsLinux())
        {
            services.AddHostedService<ConntrackCheck>();
        }

        if (o.StuckProcesses.Enabled && OperatingSystem.IsLinux())
        {
            services.AddHostedService<StuckProcessCheck>();
        }

        if (o.TenantPolicy.Enabled)
        {
            services.AddHostedService<TenantPolicyCheck>();
        }

        if (o.Journal.Enabled)
        {
            services.AddHostedService<JournalRulesService>();
        }

        services.AddHostedService<RemediationService>();

        // Where admins look: the agent's problems as conditions on its own Node, temporary ones as Events (opt-in).
        services.AddSingleton<KubeClient>();
        var conditions = o.Kubernetes.Conditions;
        if (conditions.Enabled)
        {
            services.AddHostedService<NodeConditionWriter>();
        }

        if (conditions.Enabled && conditions.Events)
        {
            services.AddSingleton<NodeEventRecorder>();
            services.AddSingleton<INodeEvents>(sp => sp.GetRequiredService<NodeEventRecorder>());
            services.AddHostedService(sp => sp.GetRequiredService<NodeEventRecorder>());
        }
        else
        {
            services.AddSingleton<INodeEvents, NoNodeEvents>();
        }
    }
}
