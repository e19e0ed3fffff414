using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// The store (the engine <paramref name="engine"/> names, opened once), its writer, its start-up retry and its health
    /// (gRPC NOT_SERVING and haproxy "down" while it cannot be used); on PostgreSQL what instances share through it.
    /// </summary>
    public static IServiceCollection AddCoordinatorStorage(this IServiceCollection services, StoreKind engine)
    {
        services.TryAddSingleton<CoordinatorStorage>();
        services.TryAddSingleton(sp => sp.GetRequiredService<CoordinatorStorage>().Writer);
        services.TryAddSingleton(sp => sp.GetRequiredService<CoordinatorStorage>().Engine);
        if (engine == StoreKind.PostgreSql)
        {
            services.TryAddSingleton(sp => sp.GetRequiredService<IStoreEngine>().Shared
                ?? throw new InvalidOperationException("the PostgreSQL store is not shared by instances"));
        }

        services.TryAddSingleton<StoreHealth>();
        services.TryAddSingleton<StoreStartup>();
        services.AddHostedService(sp => sp.GetRequiredService<StoreStartup>());
        services.AddHostedService(sp => sp.GetRequiredService<StoreHealth>());
        return services;
    }
}
