using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Inventory;

public static class InventoryServiceCollectionExtensions
{
    /// <summary>
    /// The package inventory of every digest the daemon pushes (issue 27), published to the daemon's registry
    /// (Builder:Registry) with the promotion's registry deadline (Builder:Promotion:RegistryTimeout) and credentials.
    /// </summary>
    public static IServiceCollection AddInventory(this IServiceCollection services)
    {
        services.TryAddSingleton(sp =>
        {
            var docker = sp.GetRequiredService<BuilderDocker>();
            var builder = sp.GetRequiredService<IOptions<BuilderOptions>>().Value;
            var promotion = sp.GetRequiredService<IOptions<PromotionOptions>>().Value;
            return new PackageInventory(docker, sp.GetRequiredService<TimeProvider>(),
                new RegistryClient(builder.Registry, docker.Credentials.GetValueOrDefault(builder.Registry), promotion.RegistryTimeout));
        });
        return services;
    }
}
