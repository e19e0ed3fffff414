namespace Toolforge.Agents.Coordinator.Maintenance;

public static class MaintenanceServiceCollectionExtensions
{
    /// <summary>The sweeper: nodes judged again (stale, missing), metrics, retention — by the sweeper lease's holder.</summary>
    public static IServiceCollection AddMaintenance(this IServiceCollection services)
    {
        services.AddHostedService<Sweeper>();
        return services;
    }
}
