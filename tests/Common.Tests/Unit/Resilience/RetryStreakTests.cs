using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Resilience;

namespace Toolforge.Agents.Common.Tests.Unit.Resilience;

public sealed class RetryStreakTests
{
    private static readonly RetryBounds Bounds = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(30));

    private sealed class Lines
    {
        public List<string> Said { get; } = [];

        public RetryStreak Streak(TimeProvider time, Random? random = null) =>
            new(Bounds, time, (ex, _) => Said.Add("started: " + ex.Message), (n, length) => Said.Add($"ended: {n} in {length.TotalSeconds:0}s"), random);
    }

    [Fact]
    public void AStreakOfFailures_IsSaidOnceWhenItStarts_AndOnceWhenItEnds_WithTheCountAndLength()
    {
        var time = new FakeTimeProvider();
        var lines = new Lines();
        var streak = lines.Streak(time);
        for (var i = 0; i < 5; i++)
        {
            streak.Failed(new IOException($"refused {i}"));
            time.Advance(TimeSpan.FromSeconds(3));
        }

        Assert.Equal(["started: refused 0"], lines.Said);
        Assert.Equal(5, streak.Failures);
        Assert.True(streak.Succeeded());
        Assert.True(streak.Succeeded() is false && !streak.Failing);
        Assert.Equal(["started: refused 0", "ended: 5 in 15s"], lines.Said);
    }

    [Fact]
    public void SuccessWithoutAStreak_SaysNothing()
    {
        var lines = new Lines();
        var streak = lines.Streak(new FakeTimeProvider());
        Assert.False(streak.Succeeded());
        Assert.Empty(lines.Said);
    }

    [Fact]
    public void AfterASuccess_TheNextFailureStartsANewStreak_FromInitialAgain()
    {
        var lines = new Lines();
        var streak = lines.Streak(new FakeTimeProvider(), new Random(3));
        for (var i = 0; i < 8; i++)
        {
            streak.Failed(new IOException("down"));
        }

        streak.Succeeded();
        var waits = Enumerable.Range(0, 200).Select(_ =>
        {
            var w = streak.Failed(new IOException("down again"));
            streak.Succeeded();
            return w;
        }).ToList();

        Assert.All(waits, w => Assert.InRange(w, TimeSpan.Zero, Bounds.Initial)); // each is a first failure again
        Assert.Equal(201, lines.Said.Count(l => l.StartsWith("started", StringComparison.Ordinal)));
        Assert.Equal(201, lines.Said.Count(l => l.StartsWith("ended", StringComparison.Ordinal)));
        Assert.Equal("ended: 1 in 0s", lines.Said[^1]);
    }

    [Fact]
    public void Waits_AreFullJitter_WithinTheDoublingCeiling_CappedAtMax()
    {
        var streak = new Lines().Streak(new FakeTimeProvider(), new Random(11));
        var byFailure = new List<TimeSpan>[12];
        for (var round = 0; round < 300; round++)
        {
            for (var n = 1; n <= byFailure.Length; n++)
            {
                (byFailure[n - 1] ??= []).Add(streak.Failed(new IOException("x")));
            }

            streak.Succeeded();
        }

        for (var n = 1; n <= byFailure.Length; n++)
        {
            var ceiling = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, n - 1)));
            Assert.All(byFailure[n - 1], w => Assert.InRange(w, TimeSpan.Zero, ceiling));
            // full jitter: spread over [0, ceiling], not bunched at it
            Assert.Contains(byFailure[n - 1], w => w < ceiling / 4);
            Assert.Contains(byFailure[n - 1], w => w > ceiling * 3 / 4);
        }
    }

    [Fact]
    public async Task FailedAndWait_WaitsOnTheGivenClock()
    {
        var time = new FakeTimeProvider();
        var streak = new Lines().Streak(time, new Random(5));
        streak.Failed(new IOException("first"));
        var wait = TimeSpan.FromSeconds(1.5);
        var waiting = streak.WaitAsync(wait, CancellationToken.None);
        time.Advance(wait - TimeSpan.FromMilliseconds(1));
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(await waiting);
    }

    [Fact]
    public async Task AStopDuringTheWait_EndsQuietly_WithoutAnException()
    {
        var time = new FakeTimeProvider();
        var streak = new Lines().Streak(time);
        using var stop = new CancellationTokenSource();
        var waiting = streak.FailedAndWaitAsync(new IOException("down"), stop.Token);
        Assert.False(waiting.IsCompleted);
        await stop.CancelAsync();
        Assert.False(await waiting);
        Assert.False(await streak.WaitAsync(TimeSpan.FromSeconds(1), stop.Token)); // already stopped: no wait at all
    }

    [Fact]
    public async Task Run_RetriesWhatItMay_UntilItWorks_SayingTheStreakOnce()
    {
        var time = new FakeTimeProvider();
        var lines = new Lines();
        var streak = lines.Streak(time);
        var attempts = 0;
        var run = streak.RunAsync(_ => ++attempts < 4 ? throw new IOException("no") : Task.FromResult("yes"), ex => ex is IOException, CancellationToken.None);
        while (!run.IsCompleted)
        {
            time.Advance(Bounds.Max); // past any wait
            await Task.Yield();
        }

        Assert.Equal((true, "yes"), await run);
        Assert.Equal(4, attempts);
        Assert.Equal(2, lines.Said.Count);
        Assert.Equal("started: no", lines.Said[0]);
        Assert.StartsWith("ended: 3 in ", lines.Said[1], StringComparison.Ordinal); // the length depends on how often time moved
    }

    [Fact]
    public async Task Run_StoppedDuringAWait_EndsWithoutAFailureLine()
    {
        var time = new FakeTimeProvider();
        var lines = new Lines();
        var streak = lines.Streak(time);
        using var stop = new CancellationTokenSource();
        var attempts = 0;
        var run = streak.RunAsync<int>(async ct =>
        {
            attempts++;
            await Task.Delay(TimeSpan.FromHours(1), time, ct); // a stop cancels the attempt itself
            return 1;
        }, ex => ex is IOException, stop.Token);

        await stop.CancelAsync();
        Assert.Equal((false, 0), await run);
        Assert.Equal(1, attempts);
        Assert.Empty(lines.Said);
        Assert.Equal(0, streak.Failures);
    }

    [Fact]
    public async Task Run_AFailureItMayNotRetry_IsThrown()
    {
        var streak = new Lines().Streak(new FakeTimeProvider());
        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            streak.RunAsync<int>(_ => throw new InvalidOperationException("bug"), ex => ex is IOException, CancellationToken.None));
    }

    [Fact]
    public void TheCommonLines_NameWhatIsRetried()
    {
        var time = new FakeTimeProvider();
        var logger = new ListLogger();
        var streak = RetryStreak.ForLog("syslog delivery", Bounds, time, logger, new Random(1));
        streak.Failed(new IOException("connection refused"));
        streak.Failed(new IOException("connection refused"));
        time.Advance(TimeSpan.FromSeconds(4));
        streak.Succeeded();

        Assert.Equal(2, logger.Lines.Count);
        Assert.Equal((1401, LogLevel.Warning), (logger.Lines[0].Id, logger.Lines[0].Level));
        Assert.StartsWith("syslog delivery: connection refused; retrying in ", logger.Lines[0].Text, StringComparison.Ordinal);
        Assert.Equal((1402, LogLevel.Information, "syslog delivery: recovered after 2 failures in 4 s"), logger.Lines[1]);
    }

    private sealed class ListLogger : ILogger
    {
        public List<(int Id, LogLevel Level, string Text)> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add((eventId.Id, logLevel, formatter(state, exception)));
    }

    [Fact]
    public void Bounds_AtLeast_TakesAMaxBelowInitialAsInitial()
    {
        Assert.Equal(new RetryBounds(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2)), RetryBounds.AtLeast(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryStreak(new RetryBounds(TimeSpan.Zero, TimeSpan.FromSeconds(1)), TimeProvider.System, (_, _) => { }, (_, _) => { }));
    }
}
