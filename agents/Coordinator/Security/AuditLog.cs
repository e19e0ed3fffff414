using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Every admin action as a row of the audit table (and a log line). Accepted actions are written every time; refused
/// ones (denied, invalid) at most once a minute per (identity, action, result), the next row saying how many were
/// left out meanwhile: every host certificate the puppet CA signed may call, and must not fill the table or the
/// journal by asking again and again.
/// </summary>
public sealed partial class AuditLog(StoreWriter writer, TimeProvider time, ILogger<AuditLog> logger)
{
    private const int MaxRemembered = 10_000;
    private static readonly TimeSpan Quiet = TimeSpan.FromMinutes(1);

    private readonly object _lock = new();
    private readonly Dictionary<(string Identity, string Action, string Result), (DateTimeOffset At, int Left)> _refused = [];

    public Task WriteAsync(string identity, string action, string result, string detail)
    {
        Log.Audit(logger, identity, action, result, detail);
        var at = time.GetUtcNow().ToUnixTimeMilliseconds();
        return writer.WriteAsync(new AddAudit(at, identity, action, result, detail));
    }

    /// <summary>
    /// The row of an accepted action, for the caller to commit together with the action itself (so one is never
    /// stored without the other); <see cref="Committed"/> logs it once stored.
    /// </summary>
    public AddAudit Entry(string identity, string action, string result, string detail) =>
        new(time.GetUtcNow().ToUnixTimeMilliseconds(), identity, action, result, detail);

    /// <summary>The log line of an <see cref="Entry"/> that was committed.</summary>
    public void Committed(AddAudit entry) => Log.Audit(logger, entry.Identity, entry.Action, entry.Result, entry.Detail);

    /// <summary>A refused action: written, unless one like it was written less than a minute ago (then counted).</summary>
    public async Task WriteRefusedAsync(string identity, string action, string result, string detail)
    {
        var now = time.GetUtcNow();
        var key = (identity, action, result);
        int left;
        lock (_lock)
        {
            if (_refused.TryGetValue(key, out var last) && now - last.At < Quiet)
            {
                _refused[key] = (last.At, last.Left + 1);
                return;
            }

            if (_refused.Count >= MaxRemembered)
            {
                _refused.Clear();
            }

            left = _refused.TryGetValue(key, out last) ? last.Left : 0;
            _refused[key] = (now, 0);
        }

        try
        {
            await WriteAsync(identity, action, result, left > 0 ? $"{detail} (and {left} more like it since the last row)" : detail).ConfigureAwait(false);
        }
        catch
        {
            // Not stored: this refusal and those it stood for are counted again, and the next one writes a row at once.
            lock (_lock)
            {
                var cur = _refused.GetValueOrDefault(key);
                _refused[key] = (DateTimeOffset.MinValue, cur.Left + left + 1);
            }

            throw;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2401, LogLevel.Information, "audit: {Identity} {Action} {Result}: {Detail}")]
        public static partial void Audit(ILogger logger, string identity, string action, string result, string detail);
    }
}
