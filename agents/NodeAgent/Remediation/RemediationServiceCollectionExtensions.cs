using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;

namespace Toolforge.Agents.NodeAgent.Remediation;

public static class RemediationServiceCollectionExtensions
{
    /// <summary>NodeAgent:Remediation: guarded restarts of kubelet and docker over D-Bus (each off by default).</summary>
    public static IServiceCollection AddRemediation(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<RemediationOptions>(configuration, RemediationOptions.Section, (c, o) => c.Bind(o));
        services.AddHostedService<RemediationService>();

        // The drain engine: asked by the remediation ladder (a later slice); it acts only with Drain:Enabled.
        services.TryAddSingleton<IStuckPods, ProcStuckPods>();
        services.TryAddSingleton<IRemediationGate, CoordinatorLeaseGate>();
        services.TryAddSingleton<Drainer>();

        // The incident ladder: acts only with Ladder:Enabled (and so Drain:Enabled).
        services.TryAddSingleton<ILadderMachine, DBusLadderMachine>();
        services.TryAddSingleton<LadderService>();
        services.AddHostedService(sp => sp.GetRequiredService<LadderService>());
        return services;
    }
}
