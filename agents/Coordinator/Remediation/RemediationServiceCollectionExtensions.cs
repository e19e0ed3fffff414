using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.Remediation;

public static class RemediationServiceCollectionExtensions
{
    /// <summary>Remediation pacing: the pools' leases and the Alertmanager gate before a cordon or a reboot.</summary>
    public static IServiceCollection AddRemediation(this IServiceCollection services)
    {
        services.TryAddSingleton<RemediationLeases>();
        services.TryAddSingleton<AlertGate>();
        return services;
    }
}
