using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>A report whose caller gave up while it waited behind another of its node stops waiting and is never applied later.</summary>
public sealed class StripedAsyncLockTests
{
    [Fact]
    public async Task AWaiterWhoseCallerGaveUp_StopsWaiting_AndTheNextOneStillEnters()
    {
        var locks = new StripedAsyncLock(4);
        var held = await locks.EnterAsync("node-1");
        using var gaveUp = new CancellationTokenSource();
        var waiting = locks.EnterAsync("node-1", gaveUp.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        await gaveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);

        held.Dispose();
        using var next = await locks.EnterAsync("node-1").AsTask().WaitAsync(TimeSpan.FromSeconds(5)); // the cancelled one took nothing
    }
}
