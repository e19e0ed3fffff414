using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>Which runtimes a node-agent talks to, from NodeAgent:Runtime and which sockets exist (pure: the file test comes in).</summary>
public static class RuntimeSelection
{
    public static (bool Cri, bool Docker) Resolve(RuntimeMode mode, string criEndpoint, string dockerEndpoint, Func<string, bool> socketExists) => mode switch
    {
        RuntimeMode.Cri => (true, false),
        RuntimeMode.Docker => (false, true),
        RuntimeMode.Both => (true, true),
        _ when socketExists(Path(criEndpoint)) => (true, false),
        _ when socketExists(Path(dockerEndpoint)) => (false, true),
        _ => (true, false), // neither: today's workers run containerd; its check says it is down
    };

    /// <summary>
    /// The choice this host's configuration makes, read once while wiring (which checks exist depends on it) and kept
    /// in <paramref name="services"/>: the runtime check, the Docker check and the tenant audit's sources all follow the
    /// same answer. Docker also needs NodeAgent:Docker:Enabled.
    /// </summary>
    public static RuntimeChoice RuntimeChoice(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.FirstOrDefault(d => d.ServiceType == typeof(RuntimeChoice))?.ImplementationInstance is RuntimeChoice made)
        {
            return made;
        }

        var node = configuration.ReadNodeOptions();
        var cri = OptionsRegistration.GetExactly<CriOptions>(configuration.GetSection(CriOptions.Section), (c, o) => c.Bind(o));
        var docker = OptionsRegistration.GetExactly<DockerOptions>(configuration.GetSection(DockerOptions.Section), (c, o) => c.Bind(o));
        var (useCri, useDocker) = Resolve(node.Runtime, cri.Endpoint, docker.Endpoint, File.Exists);
        var choice = new RuntimeChoice(useCri, useDocker && docker.Enabled);
        services.AddSingleton(choice);
        return choice;
    }

    private static string Path(string endpoint) => Common.Checks.PeerErrors.UnixPath(endpoint) ?? endpoint;
}
