using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Conntrack;

public static class ConntrackServiceCollectionExtensions
{
    /// <summary>NodeAgent:Conntrack: kube-proxy.conntrack, stale UDP/SCTP entries to Services.</summary>
    public static IServiceCollection AddConntrack(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<ConntrackOptions>(configuration, ConntrackOptions.Section, (c, o) => c.Bind(o));
        var o = OptionsRegistration.GetExactly<ConntrackOptions>(configuration.GetSection(ConntrackOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled && OperatingSystem.IsLinux())
        {
            services.AddHostedService<ConntrackCheck>();
        }

        return services;
    }
}
