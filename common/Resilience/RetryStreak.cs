using Microsoft.Extensions.Logging;

namespace Toolforge.Agents.Common.Resilience;

/// <summary>
/// The one retry loop of every reconnect and retry in the agents: a <see cref="Backoff"/> (capped exponential, full
/// jitter) with its <see cref="RetryBounds"/>, a count of the failures in a row, and exactly two lines per streak: one
/// when it starts (the first failure, with its reason) and one when it ends (the first success after it, with the
/// count and how long it lasted). Not one line per attempt: an admin reads a peer that was away for an hour as two
/// lines. Waits are on the <see cref="TimeProvider"/> it is given, so tests move time instead of sleeping.
/// </summary>
/// <remarks>
/// The shape of a loop that uses it:
/// <code>
/// while (!ct.IsCancellationRequested)
/// {
///     try { Connect(); streak.Succeeded(); Serve(ct); }
///     catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
///     catch (PeerException ex) { if (!await streak.FailedAndWaitAsync(ex, ct)) return; }
/// }
/// </code>
/// A stop (the token cancelled) is never a failure: <see cref="WaitAsync"/> returns false instead of throwing, and
/// <see cref="RunAsync{T}"/> returns without a line. A caller that schedules its next attempt itself (a periodic
/// flush, a synchronous reader thread) takes the wait from <see cref="Failed"/>. Each feature passes its own two log
/// delegates (so its event ids stay its own), or uses the common lines (<see cref="ForLog"/>, events 1401 and 1402).
/// Not thread-safe: one loop owns it.
/// </remarks>
public sealed partial class RetryStreak
{
    private readonly Backoff _backoff;
    private readonly TimeProvider _time;
    private readonly Action<Exception, TimeSpan> _started;
    private readonly Action<int, TimeSpan> _ended;
    private long _startedAt;

    /// <param name="bounds">The backoff's first ceiling and cap.</param>
    /// <param name="time">The clock the waits and the streak's length are measured on.</param>
    /// <param name="started">Said once, at a streak's first failure: the failure and the wait before the next attempt.</param>
    /// <param name="ended">Said once, at the first success after a streak: how many failures, over how long.</param>
    /// <param name="random">The jitter's source (a seeded one in tests).</param>
    public RetryStreak(RetryBounds bounds, TimeProvider time, Action<Exception, TimeSpan> started, Action<int, TimeSpan> ended, Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(started);
        ArgumentNullException.ThrowIfNull(ended);
        _backoff = new Backoff(bounds.Initial, bounds.Max, random);
        Bounds = bounds;
        _time = time;
        _started = started;
        _ended = ended;
    }

    /// <summary>A streak that says the common lines (1401 when it starts, 1402 when it ends) naming <paramref name="what"/>.</summary>
    public static RetryStreak ForLog(string what, RetryBounds bounds, TimeProvider time, ILogger logger, Random? random = null) =>
        new(bounds, time,
            (ex, wait) => Log.Started(logger, what, ex.Message, wait.TotalSeconds, bounds.Max.TotalSeconds),
            (failures, length) => Log.Ended(logger, what, failures, length.TotalSeconds),
            random);

    public RetryBounds Bounds { get; }

    /// <summary>Failures in a row since the last success (0: not in a streak).</summary>
    public int Failures => _backoff.Failures;

    /// <summary>Whether the last attempt failed.</summary>
    public bool Failing => _backoff.Failures > 0;

    /// <summary>How long the current streak has lasted (zero when not failing).</summary>
    public TimeSpan Length => Failing ? _time.GetElapsedTime(_startedAt) : TimeSpan.Zero;

    /// <summary>
    /// Counts a failure (the first of a streak is said through the start line) and returns how long to wait before the
    /// next attempt: uniformly random in [0, min(Max, Initial·2ⁿ⁻¹)] after the n-th failure in a row.
    /// </summary>
    public TimeSpan Failed(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var first = !Failing;
        if (first)
        {
            _startedAt = _time.GetTimestamp();
        }

        var wait = _backoff.Next();
        if (first)
        {
            _started(error, wait);
        }

        return wait;
    }

    /// <summary>An attempt succeeded: a streak, if there was one, ends (said through the end line) and the next failure
    /// starts from <see cref="RetryBounds.Initial"/> again. Returns whether a streak ended.</summary>
    public bool Succeeded()
    {
        if (!Failing)
        {
            return false;
        }

        var failures = _backoff.Failures;
        var length = _time.GetElapsedTime(_startedAt);
        _backoff.Reset();
        _ended(failures, length);
        return true;
    }

    /// <summary>Waits <paramref name="wait"/> on the streak's clock; false (not an exception) when stopped meanwhile.</summary>
    public async Task<bool> WaitAsync(TimeSpan wait, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return false;
        }

        try
        {
            await Task.Delay(wait, _time, ct).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary><see cref="Failed"/>, then waits out the backoff; false when stopped meanwhile (the loop ends).</summary>
    public Task<bool> FailedAndWaitAsync(Exception error, CancellationToken ct) => WaitAsync(Failed(error), ct);

    /// <summary>
    /// Tries <paramref name="attempt"/> until it returns: a failure <paramref name="retry"/> accepts is counted and waited
    /// out; any other is thrown; a stop ends it quietly (<c>default</c>, no line, no failure counted). The streak is left
    /// ended after a success, so a loop may go on using it (reconnect after a session it then keeps).
    /// </summary>
    public async Task<(bool Done, T? Value)> RunAsync<T>(Func<CancellationToken, Task<T>> attempt, Func<Exception, bool> retry, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        ArgumentNullException.ThrowIfNull(retry);
        while (!ct.IsCancellationRequested)
        {
            T value;
            try
            {
                value = await attempt(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (retry(ex))
            {
                if (!await FailedAndWaitAsync(ex, ct).ConfigureAwait(false))
                {
                    break;
                }

                continue;
            }

            Succeeded();
            return (true, value);
        }

        return (false, default);
    }

    private static partial class Log
    {
        [LoggerMessage(1401, LogLevel.Warning, "{What}: {Reason}; retrying in {WaitSeconds:0.#} s, then with backoff (at most {MaxSeconds:0.#} s apart) until it works")]
        public static partial void Started(ILogger logger, string what, string reason, double waitSeconds, double maxSeconds);

        [LoggerMessage(1402, LogLevel.Information, "{What}: recovered after {Failures} failures in {Seconds:0.#} s")]
        public static partial void Ended(ILogger logger, string what, int failures, double seconds);
    }
}
