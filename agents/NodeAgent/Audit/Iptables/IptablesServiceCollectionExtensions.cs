using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Checks;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

public static class IptablesServiceCollectionExtensions
{
    /// <summary>NodeAgent:Iptables: kube-proxy.iptables, unless kube-proxy is configured to run in nftables mode.</summary>
    public static IServiceCollection AddIptablesAudit(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<IptablesOptions>(configuration, IptablesOptions.Section, (c, o) => c.Bind(o));
        services.AddUnsupportedOffLinux(NatAudit.Check);
        var o = OptionsRegistration.GetExactly<IptablesOptions>(configuration.GetSection(IptablesOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled && OperatingSystem.IsLinux() && configuration.ConfiguredKubeProxyMode() != KubeProxyMode.Nftables)
        {
            services.AddHostedService(sp => ActivatorUtilities.CreateInstance<IptablesAuditCheck>(sp, sp.GetRequiredService<ProxyModeDetector>()));
        }

        return services;
    }
}
