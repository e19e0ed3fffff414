using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.State;

public static class StateServiceCollectionExtensions
{
    /// <summary>The nodes' state as stored (reports applied once their write committed), the feed watchers read, and the admission of reports into it.</summary>
    public static IServiceCollection AddNodeState(this IServiceCollection services)
    {
        services.TryAddSingleton<ChangeFeed>();
        services.TryAddSingleton<StateStore>();
        services.TryAddSingleton<Reports.ReportAdmission>();
        return services;
    }
}
