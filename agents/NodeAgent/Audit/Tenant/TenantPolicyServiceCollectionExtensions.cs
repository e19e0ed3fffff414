using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Cri;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

public static class TenantPolicyServiceCollectionExtensions
{
    /// <summary>NodeAgent:TenantPolicy: tenant.policy over the runtimes the runtime choice names (CRI, Docker or both).</summary>
    public static IServiceCollection AddTenantPolicy(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<TenantPolicyOptions>(configuration, TenantPolicyOptions.Section, (c, o) => c.Bind(o));
        var runtimes = services.RuntimeChoice(configuration);
        services.TryAddSingleton<IReadOnlyList<IPodContainerSource>>(sp =>
        {
            var sources = new List<IPodContainerSource>();
            if (runtimes.Cri)
            {
                sources.Add(new CriPodContainers(sp.GetRequiredService<IOptions<CriOptions>>().Value));
            }

            if (runtimes.Docker)
            {
                sources.Add(new DockerPodContainers(sp.GetRequiredService<IOptions<DockerOptions>>().Value));
            }

            return sources;
        });

        var o = OptionsRegistration.GetExactly<TenantPolicyOptions>(configuration.GetSection(TenantPolicyOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled)
        {
            services.AddHostedService<TenantPolicyCheck>();
        }

        return services;
    }
}
