namespace Toolforge.Agents.Coordinator.Security;

/// <summary>Log lines of the coordinator's TLS set-up.</summary>
internal static partial class CoordinatorLog
{
    /// <summary>Renewed TLS files that did not load (yet): the pair loaded before stays in use.</summary>
    public static readonly Prometheus.Counter ReloadFailures = Prometheus.Metrics.CreateCounter(
        "toolforge_coordinator_tls_reload_failures_total", "Times the coordinator's certificate, key or CA files changed but did not load (the ones loaded before stay in use).");

    [LoggerMessage(2402, LogLevel.Warning, "{Key}: the files changed but do not load yet ({Reason}); still serving with the pair loaded before, trying again at the next change")]
    public static partial void CertificateNotReloaded(ILogger logger, string key, string reason);
}
