using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Toolforge.Agents.Common.Reporting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Remediation;

namespace Toolforge.Agents.NodeAgent;

/// <summary>The node-agent's services: the checks and audits, each on its own interval with a hard timeout.</summary>
internal static class NodeAgentDaemon
{
    public const int DefaultMetricsPort = 9502;

    public static void Configure(HostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<NodeAgentOptions>(builder.Configuration, NodeAgentOptions.Section);
        services.AddHttpClient("kubelet");
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<NodeAgentOptions>>().Value;
            return new SystemdClient(o.DBusAddress, o.DBusTimeout);
        });
        services.AddSingleton<ClusterView>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterView>());

        var o = builder.Configuration.GetSection(NodeAgentOptions.Section).Get<NodeAgentOptions>() ?? new NodeAgentOptions();
        if (!OperatingSystem.IsLinux())
        {
            // D-Bus, iptables and the journal are Linux's; the Docker and Kubernetes checks still run.
            services.AddHostedService<UnsupportedChecks>();
        }

        if (o.Kubelet.Enabled)
        {
            services.AddHostedService(sp => ActivatorUtilities.CreateInstance<KubeletCheck>(sp, sp.GetRequiredService<ClusterView>()));
        }

        if (o.Docker.Enabled)
        {
            services.AddHostedService(sp => new DockerCheck(sp.GetRequiredService<IOptions<NodeAgentOptions>>(), sp.GetRequiredService<AgentState>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<DockerCheck>>(),
                OperatingSystem.IsLinux() ? sp.GetRequiredService<SystemdClient>() : null));
        }

        if (o.Iptables.Enabled && OperatingSystem.IsLinux())
        {
            services.AddHostedService<IptablesAuditCheck>();
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
    }
}

/// <summary>On Windows the Linux-only checks say so instead of failing.</summary>
internal sealed class UnsupportedChecks(AgentState state) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var check in new[] { KubeletCheck.Unit, DockerCheck.Unit, NatAudit.Check })
        {
            state.SetCheck(check, Toolforge.Agents.Contracts.V1.CheckState.Unknown, "unsupported on this platform");
        }

        return Task.CompletedTask;
    }
}
