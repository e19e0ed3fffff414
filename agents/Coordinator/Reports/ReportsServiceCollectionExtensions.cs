using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Toolforge.Agents.Coordinator.Reports;

public static class ReportsServiceCollectionExtensions
{
    /// <summary>The admission of reports: the in-flight bound and the reconnect window told to agents.</summary>
    public static IServiceCollection AddReportIngest(this IServiceCollection services)
    {
        services.TryAddSingleton<ReportAdmission>();
        return services;
    }
}
