using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Reporting;

namespace Toolforge.Agents.NodeAgent.Checks;

public static class UnsupportedCheckRegistration
{
    /// <summary>Off Linux: <paramref name="check"/> is reported unknown, "unsupported on this platform".</summary>
    public static IServiceCollection AddUnsupportedOffLinux(this IServiceCollection services, string check)
    {
        if (!OperatingSystem.IsLinux())
        {
            // Not AddHostedService: it would keep only one UnsupportedCheck, and each feature adds its own.
            services.AddSingleton<IHostedService>(sp => new UnsupportedCheck(sp.GetRequiredService<AgentState>(), check));
        }

        return services;
    }
}
