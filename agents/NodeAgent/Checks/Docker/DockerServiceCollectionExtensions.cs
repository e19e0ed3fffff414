using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Cri;

namespace Toolforge.Agents.NodeAgent.Checks.Docker;

public static class DockerServiceCollectionExtensions
{
    /// <summary>NodeAgent:Docker: docker.engine and docker.unit, when the runtime choice (NodeAgent:Runtime) includes Docker.</summary>
    public static IServiceCollection AddDocker(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<DockerOptions>(configuration, DockerOptions.Section, (c, o) => c.Bind(o));
        services.AddUnsupportedOffLinux(DockerCheck.Unit);
        if (services.RuntimeChoice(configuration).Docker)
        {
            services.AddHostedService(sp => new DockerCheck(sp.GetRequiredService<IOptions<DockerOptions>>(), sp.GetRequiredService<AgentState>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<DockerCheck>>(),
                OperatingSystem.IsLinux() ? sp.GetRequiredService<SystemdClient>() : null));
        }

        return services;
    }
}
