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
/// Counts a unit's automatic restarts in a sliding window from NRestarts (systemd's count of restarts done by
/// Restart=). Manual restarts by an admin are not flapping and do not count. Pure: time comes in.
/// </summary>
internal sealed class FlapTracker(TimeSpan window)
{
    private readonly Queue<DateTimeOffset> _restarts = new();
    private uint? _last;

    public int Observe(DateTimeOffset now, uint nRestarts)
    {
        if (_last is { } r && nRestarts > r)
        {
            for (var i = 0; i < nRestarts - r; i++)
            {
                _restarts.Enqueue(now);
            }
        }

        _last = nRestarts; // a daemon-reload may reset it: the next increase counts from there
        while (_restarts.Count > 0 && _restarts.Peek() <= now - window)
        {
            _restarts.Dequeue();
        }

        return _restarts.Count;
    }
}
