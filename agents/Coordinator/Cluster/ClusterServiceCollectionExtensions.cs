using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.Cluster;

public static class ClusterServiceCollectionExtensions
{
    /// <summary>
    /// Several instances: on PostgreSQL the sweeper lease and the change listener (what only instances sharing a
    /// database need), on SQLite the sole instance's lease; haproxy's agent check on either.
    /// </summary>
    public static IServiceCollection AddCluster(this IServiceCollection services, StoreKind engine)
    {
        if (engine == StoreKind.PostgreSql)
        {
            services.TryAddSingleton<SweeperLease>();
            services.TryAddSingleton<ISweeperLease>(sp => sp.GetRequiredService<SweeperLease>());
            services.AddHostedService<ChangeListener>();
        }
        else
        {
            services.TryAddSingleton<ISweeperLease, SoleInstanceLease>();
        }

        services.TryAddSingleton<HaproxyAgentCheck>();
        services.AddHostedService(sp => sp.GetRequiredService<HaproxyAgentCheck>());
        return services;
    }
}
