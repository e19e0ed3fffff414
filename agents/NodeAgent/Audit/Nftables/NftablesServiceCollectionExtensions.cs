using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

public static class NftablesServiceCollectionExtensions
{
    /// <summary>NodeAgent:Nftables: kube-proxy.nftables, unless kube-proxy is configured to run in iptables mode.</summary>
    public static IServiceCollection AddNftablesAudit(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<NftablesOptions>(configuration, NftablesOptions.Section, (c, o) => c.Bind(o));
        var o = OptionsRegistration.GetExactly<NftablesOptions>(configuration.GetSection(NftablesOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled && OperatingSystem.IsLinux() && configuration.ConfiguredKubeProxyMode() != KubeProxyMode.Iptables)
        {
            services.AddHostedService<NftablesAuditCheck>();
        }

        return services;
    }
}
