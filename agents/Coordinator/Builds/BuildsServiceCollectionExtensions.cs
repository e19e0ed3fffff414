using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.Builds;

public static class BuildsServiceCollectionExtensions
{
    /// <summary>The build queue (requests, dispatch to builders, progress, cancel) and the builds' logs.</summary>
    public static IServiceCollection AddBuilds(this IServiceCollection services)
    {
        services.TryAddSingleton<BuildLogs>();
        services.TryAddSingleton<BuildQueue>();
        services.TryAddSingleton<SecurityRebuildSchedule>();
        return services;
    }
}
