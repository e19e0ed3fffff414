using Microsoft.Extensions.Time.Testing;

namespace Toolforge.Agents.TestSupport;

/// <summary>A fake clock that says when a timer is created (a loop under test waits for its next poll): the test moves time only then.</summary>
public sealed class SteppedTime(DateTimeOffset start) : FakeTimeProvider(start)
{
    public SemaphoreSlim TimerCreated { get; } = new(0);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = base.CreateTimer(callback, state, dueTime, period);
        TimerCreated.Release();
        return t;
    }
}
