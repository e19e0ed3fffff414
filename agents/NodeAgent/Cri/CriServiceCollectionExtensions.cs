using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.NodeAgent.Checks.Systemd;

namespace Toolforge.Agents.NodeAgent.Cri;

public static class CriServiceCollectionExtensions
{
    /// <summary>NodeAgent:Cri: runtime.NAME and NAME.unit, when the runtime choice (NodeAgent:Runtime) includes CRI.</summary>
    public static IServiceCollection AddCri(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<CriOptions>(configuration, CriOptions.Section, (c, o) => c.Bind(o));
        if (services.RuntimeChoice(configuration).Cri)
        {
            services.AddHostedService(sp => new CriRuntimeCheck(sp.GetRequiredService<IOptions<CriOptions>>(), sp.GetRequiredService<AgentState>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CriRuntimeCheck>>(),
                OperatingSystem.IsLinux() ? sp.GetRequiredService<SystemdClient>() : null));
        }

        return services;
    }
}
