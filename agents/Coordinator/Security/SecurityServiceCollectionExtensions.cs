using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Security;

public static class SecurityServiceCollectionExtensions
{
    /// <summary>
    /// Who calls and in which role: the client certificate check, the roles and deny-list (reloaded on SIGHUP from
    /// <paramref name="configuration"/>'s sources), the caller checks, the report rate, refusals, the audit log, and the
    /// registry that closes streams a reload no longer allows.
    /// </summary>
    public static IServiceCollection AddSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(sp => new PolicyProvider(
            sp.GetRequiredService<IOptions<SecurityOptions>>(), sp.GetRequiredService<ILogger<PolicyProvider>>(), configuration,
            sp.GetServices<ValidatedOptionsEntry>().ToList(), sp.GetService<OwnConfiguration>()));
        services.TryAddSingleton<ClientCertificateValidator>();
        services.TryAddSingleton<RefusalLog>();
        services.TryAddSingleton<CallerAuthorizer>();
        services.TryAddSingleton<ReportRateLimiter>();
        services.TryAddSingleton<StreamRegistry>();
        services.AddHostedService<ReloadOnHangup>();
        services.TryAddSingleton<AuditLog>();
        return services;
    }
}
