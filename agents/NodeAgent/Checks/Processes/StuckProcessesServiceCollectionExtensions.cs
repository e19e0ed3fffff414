using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Processes;

public static class StuckProcessesServiceCollectionExtensions
{
    /// <summary>NodeAgent:StuckProcesses: node.stuck-processes, processes held in uninterruptible sleep.</summary>
    public static IServiceCollection AddStuckProcesses(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<StuckProcessesOptions>(configuration, StuckProcessesOptions.Section, (c, o) => c.Bind(o));
        var o = OptionsRegistration.GetExactly<StuckProcessesOptions>(configuration.GetSection(StuckProcessesOptions.Section), (c, o) => c.Bind(o));
        services.TryAddSingleton<StuckProcessEvidence>();
        if (o.Enabled && OperatingSystem.IsLinux())
        {
            services.AddHostedService<StuckProcessCheck>();
        }

        return services;
    }
}
