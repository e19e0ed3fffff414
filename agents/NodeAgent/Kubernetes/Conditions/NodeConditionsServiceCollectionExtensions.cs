using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

public static class NodeConditionsServiceCollectionExtensions
{
    /// <summary>
    /// NodeAgent:Kubernetes:Conditions (opt-in): the agent's problems as conditions on its own Node, temporary ones as
    /// Events. Without Events, <see cref="INodeEvents"/> is one that drops them.
    /// </summary>
    public static IServiceCollection AddNodeConditions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<NodeConditionsOptions>(configuration, NodeConditionsOptions.Section, (c, o) => c.Bind(o));
        services.AddSingleton<IValidateOptions<NodeConditionsOptions>, ConditionsNeedTheApiServer>();
        var o = OptionsRegistration.GetExactly<NodeConditionsOptions>(configuration.GetSection(NodeConditionsOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled)
        {
            services.AddHostedService<NodeConditionWriter>();
        }

        if (o.Enabled && o.Events)
        {
            services.TryAddSingleton<NodeEventRecorder>();
            services.TryAddSingleton<INodeEvents>(sp => sp.GetRequiredService<NodeEventRecorder>());
            services.AddHostedService(sp => sp.GetRequiredService<NodeEventRecorder>());
        }
        else
        {
            services.TryAddSingleton<INodeEvents, NoNodeEvents>();
        }

        return services;
    }
}
