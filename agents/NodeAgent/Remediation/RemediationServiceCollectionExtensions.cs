using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Remediation;

public static class RemediationServiceCollectionExtensions
{
    /// <summary>NodeAgent:Remediation: guarded restarts of kubelet and docker over D-Bus (each off by default).</summary>
    public static IServiceCollection AddRemediation(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<RemediationOptions>(configuration, RemediationOptions.Section, (c, o) => c.Bind(o));
        services.AddHostedService<RemediationService>();
        return services;
    }
}
