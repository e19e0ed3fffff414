using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

public static class KubernetesServiceCollectionExtensions
{
    /// <summary>NodeAgent:Kubernetes: the cluster view every audit reads, and the API client the writers share.</summary>
    public static IServiceCollection AddKubernetes(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<KubernetesOptions>(configuration, KubernetesOptions.Section, (c, o) => c.Bind(o));
        services.TryAddSingleton<ClusterView>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterView>());
        services.TryAddSingleton<KubeClient>();
        return services;
    }
}
