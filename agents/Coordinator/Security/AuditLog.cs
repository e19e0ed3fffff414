using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>Every admin action, allowed or refused, as a row of the audit table (and a log line).</summary>
public sealed partial class AuditLog(StoreWriter writer, TimeProvider time, ILogger<AuditLog> logger)
{
    public Task WriteAsync(string identity, string action, string result, string detail)
    {
        Log.Audit(logger, identity, action, result, detail);
        var at = time.GetUtcNow().ToUnixTimeMilliseconds();
        return writer.WriteAsync(new AddAudit(at, identity, action, result, detail));
    }

    private static partial class Log
    {
        [LoggerMessage(2401, LogLevel.Information, "audit: {Identity} {Action} {Result}: {Detail}")]
        public static partial void Audit(ILogger logger, string identity, string action, string result, string detail);
    }
}
