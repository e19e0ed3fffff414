using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.State;

public static class StateServiceCollectionExtensions
{
    /// <summary>The nodes' state as stored (reports applied once their write committed) and the feed watchers read.</summary>
    public static IServiceCollection AddNodeState(this IServiceCollection services)
    {
        services.TryAddSingleton<ChangeFeed>();
        services.TryAddSingleton<StateStore>();
        return services;
    }
}
