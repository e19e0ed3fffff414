using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent;

public static class NodeServiceCollectionExtensions
{
    /// <summary>The NodeAgent section's own keys (<see cref="NodeOptions"/>), which every feature may read.</summary>
    public static IServiceCollection AddNodeOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<NodeOptions>(configuration, NodeOptions.Section, (c, o) => c.Bind(o));
        return services;
    }

    /// <summary>The NodeAgent section's own keys as the file says, for a feature's wiring that depends on them.</summary>
    public static NodeOptions ReadNodeOptions(this IConfiguration configuration) =>
        OptionsRegistration.GetExactly<NodeOptions>(configuration.GetSection(NodeOptions.Section), (c, o) => c.Bind(o));
}
