using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Tests;

/// <summary>A run that times out is cancelled and awaited: it never races the next run, and two runs never overlap.</summary>
public sealed class PeriodicCheckTests
{
    private sealed class SlowCheck(AgentState state, TimeProvider time, Func<int, CancellationToken, Task> run)
        : PeriodicCheck(state, time, NullLogger.Instance)
    {
        public int Runs;

        protected override IReadOnlyList<string> Names => ["slow"];

        protected override TimeSpan Interval => TimeSpan.FromMinutes(1);

        protected override TimeSpan Timeout => TimeSpan.FromMilliseconds(100);

        protected override Task RunOnceAsync(CancellationToken ct) => run(Interlocked.Increment(ref Runs), ct);
    }

    [Theory]
    [InlineData("peer")]
    [InlineData("io")] // any failure met at stop, not only a peer's: a socket closed under the run
    public async Task APeerDownMetWhileTheAgentStops_EndsTheRunQuietly_NotTheService(string failure)
    {
        // Seen as the builder daemon exiting 1 at SIGTERM: its first run met the closed Docker socket just as the host stopped.
        var state = new AgentState(TimeProvider.System, NullLogger<AgentState>.Instance);
        using var stopping = new CancellationTokenSource();
        var check = new SlowCheck(state, TimeProvider.System, async (_, _) =>
        {
            await stopping.CancelAsync(); // the host stops while the call is failing
            throw failure == "peer"
                ? new PeerUnavailableException("Docker at unix:///run/docker.sock", "no Docker socket")
                : new IOException("Broken pipe");
        });

        // The host treats an OperationCanceledException at stop as the stop itself (which one comes out depends on when the
        // run's cancellation is seen); the peer's failure must never escape as the service's.
        var escaped = await Record.ExceptionAsync(() => check.RunGuardedAsync(stopping.Token));
        Assert.True(escaped is null or OperationCanceledException, escaped?.ToString());
        Assert.Null(state.GetCheck("slow")); // and nothing is reported for a run the stop cut short
    }

    [Fact]
    public async Task ARunThatTimesOut_IsAwaited_SoItsLateResultCannotLandAfterwards()
    {
        var state = new AgentState(TimeProvider.System, NullLogger<AgentState>.Instance);
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var check = new SlowCheck(state, TimeProvider.System, async (_, ct) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            finally
            {
                // What a run that was half-way does on its way out: writes what it had. It must not be the last word.
                await Task.Delay(50, CancellationToken.None);
                state.SetCheck("slow", CheckState.Ok, "late result of the cancelled run");
                ended.SetResult();
            }
        });

        await check.RunGuardedAsync(CancellationToken.None);
        Assert.True(ended.Task.IsCompleted, "RunGuardedAsync returned before the cancelled run had ended");
        var result = state.GetCheck("slow")!;
        Assert.Equal(CheckState.Unknown, result.State);
        Assert.StartsWith("did not finish within 0.1s", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARunThatNeverStops_KeepsTheNextFromStarting_UntilItHasEnded()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = new AgentState(time, NullLogger<AgentState>.Instance);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var check = new SlowCheck(state, time, (n, _) => n == 1 ? release.Task : Task.CompletedTask); // the first ignores its token

        var first = check.RunGuardedAsync(CancellationToken.None);
        while (!first.IsCompleted)
        {
            time.Advance(PeriodicCheck.StopGrace); // the grace after the (real-time) timeout, on the check's clock
            await Task.WhenAny(first, Task.Delay(20));
        }

        await first;
        Assert.Equal(CheckState.Unknown, state.GetCheck("slow")!.State);

        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(1, check.Runs); // not started beside the one still running
        Assert.StartsWith("the previous run did not stop", state.GetCheck("slow")!.Message, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromMinutes(1) * PeriodicCheck.FailAfterIntervals); // the interval is a minute
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Failing, state.GetCheck("slow")!.State); // a check that runs nothing does not stay "unknown"
        Assert.Equal(1, check.Runs);

        release.SetResult();
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(2, check.Runs);
    }
}
