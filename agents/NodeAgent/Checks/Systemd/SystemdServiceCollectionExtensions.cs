using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Systemd;

public static class SystemdServiceCollectionExtensions
{
    /// <summary>The D-Bus client of systemd the unit checks and remediation share (NodeAgent:DBusAddress, DBusTimeout).</summary>
    public static IServiceCollection AddSystemd(this IServiceCollection services)
    {
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<NodeOptions>>().Value;
            return new SystemdClient(o.DBusAddress, o.DBusTimeout);
        });
        return services;
    }
}
