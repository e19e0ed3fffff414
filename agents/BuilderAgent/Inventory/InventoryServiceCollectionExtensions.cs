using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.BuilderAgent.Inventory;

public static class InventoryServiceCollectionExtensions
{
    /// <summary>The package inventory of every digest the daemon pushes (issue 27).</summary>
    public static IServiceCollection AddInventory(this IServiceCollection services)
    {
        services.TryAddSingleton<PackageInventory>();
        return services;
    }
}
