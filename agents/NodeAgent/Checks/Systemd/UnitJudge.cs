using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Checks.Systemd;

/// <summary>How a unit's state reads to an admin (pure).</summary>
internal static class UnitJudge
{
    public static (CheckState State, string Message) Judge(UnitStatus u)
    {
        if (u.LoadState == "not-found")
        {
            return (CheckState.Failing, $"{u.Unit} is not installed (LoadState=not-found)");
        }

        var text = $"{u.ActiveState} ({u.SubState}), {u.NRestarts} automatic restart(s)";
        return u.ActiveState switch
        {
            "active" => (CheckState.Ok, text),
            "reloading" => (CheckState.Warning, text),
            "activating" when u.SubState == "auto-restart" => (CheckState.Failing, $"restarting after a crash: {text}"),
            "activating" or "deactivating" => (CheckState.Warning, text),
            "failed" => (CheckState.Failing, $"failed: {text}"),
            _ => (CheckState.Failing, $"not running: {text}"),
        };
    }
}

/// <summary>
/// Counts a unit's restarts in a sliding window from its NRestarts (automatic restarts) and changes of
/// InactiveExitTimestamp (any new start, also a manual one). Pure: time comes in.
/// </summary>
internal sealed class FlapTracker(TimeSpan window)
{
    private readonly Queue<DateTimeOffset> _restarts = new();
    private uint? _lastRestarts;
    private ulong? _lastStart;

    public int Observe(DateTimeOffset now, uint nRestarts, ulong startMicros)
    {
        var delta = 0;
        if (_lastRestarts is { } r && nRestarts > r)
        {
            delta = (int)(nRestarts - r);
        }

        if (_lastStart is { } s && startMicros != s && startMicros != 0)
        {
            delta = Math.Max(delta, 1);
        }

        _lastRestarts = nRestarts;
        _lastStart = startMicros;
        for (var i = 0; i < delta; i++)
        {
            _restarts.Enqueue(now);
        }

        while (_restarts.Count > 0 && _restarts.Peek() <= now - window)
        {
            _restarts.Dequeue();
        }

        return _restarts.Count;
    }
}
