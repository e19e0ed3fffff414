using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class StuckProcessTests
{
    [Fact]
    public async Task AFrozenProcess_IsStuckAfterTheThreshold_NotBefore_AndClearsOnceReleased()
    {
        await using var frozen = await FrozenProcess.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = Support.State(time);
        var check = Check(time, state);

        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Ok, state.GetCheck(StuckProcessCheck.Check)!.State);
        Assert.DoesNotContain(state.GetFindings(StuckProcessCheck.Check), f => f.Subject.StartsWith($"{frozen.Pid} ", StringComparison.Ordinal));

        time.Advance(TimeSpan.FromSeconds(119));
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.DoesNotContain(state.GetFindings(StuckProcessCheck.Check), f => f.Subject.StartsWith($"{frozen.Pid} ", StringComparison.Ordinal));

        time.Advance(TimeSpan.FromSeconds(2));
        await check.RunGuardedAsync(CancellationToken.None);
        var result = state.GetCheck(StuckProcessCheck.Check)!;
        Assert.NotEqual(CheckState.Ok, result.State);
        var f = Assert.Single(state.GetFindings(StuckProcessCheck.Check), f => f.Subject == $"{frozen.Pid} sleep");
        Assert.Equal("stuck-process", f.Kind);
        Assert.Equal("121", f.Details["seconds"]);
        Assert.False(string.IsNullOrEmpty(f.Details["wchan"]));
        Assert.NotEqual("?", f.Details["wchan"]);
        Assert.Contains($"{frozen.Pid} sleep in {f.Details["wchan"]} for 2m01s", result.Message, StringComparison.Ordinal);

        await frozen.ThawAsync();
        Assert.True(await Peer.EventuallyAsync(() => frozen.State() != 'D', TimeSpan.FromSeconds(10)));
        time.Advance(TimeSpan.FromSeconds(30));
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.DoesNotContain(state.GetFindings(StuckProcessCheck.Check), f => f.Subject.StartsWith($"{frozen.Pid} ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ThresholdsAndIgnoredCommands_DecideTheState()
    {
        await using var a = await FrozenProcess.StartAsync();
        await using var b = await FrozenProcess.StartAsync();
        await using var c = await FrozenProcess.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = Support.State(time);
        var check = Check(time, state);
        await check.RunGuardedAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(3));
        await check.RunGuardedAsync(CancellationToken.None);
        var failing = state.GetCheck(StuckProcessCheck.Check)!;
        Assert.True(failing.State == CheckState.Failing, failing.Message); // three frozen processes, Failing = 3
        Assert.Contains("by wchan:", failing.Message, StringComparison.Ordinal);

        var ignoring = Support.State(time);
        var check2 = Check(time, ignoring, o => o.IgnoreCommands = ["sl??p"]);
        await check2.RunGuardedAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(3));
        await check2.RunGuardedAsync(CancellationToken.None);
        Assert.DoesNotContain(ignoring.GetFindings(StuckProcessCheck.Check), f => f.Subject.EndsWith(" sleep", StringComparison.Ordinal));
    }
}
