namespace Toolforge.Agents.Common.Resilience;

/// <summary>
/// Capped exponential backoff with full jitter: after the n-th failure in a row, wait a uniformly random time in
/// [0, min(Max, Initial·2ⁿ⁻¹)]. The randomness matters: after a coordinator restart a whole fleet would otherwise
/// reconnect in step. Every reconnect loop in the agents uses this one, through <see cref="RetryStreak"/>.
/// </summary>
public sealed class Backoff
{
    private readonly Random _random;
    private int _failures;

    public Backoff(TimeSpan initial, TimeSpan max, Random? random = null)
    {
        if (initial <= TimeSpan.Zero || max < initial)
        {
            throw new ArgumentOutOfRangeException(nameof(initial), $"backoff needs 0 < initial ({initial}) <= max ({max})");
        }

        Initial = initial;
        Max = max;
        _random = random ?? Random.Shared;
    }

    public TimeSpan Initial { get; }

    public TimeSpan Max { get; }

    /// <summary>Failures since the last <see cref="Reset"/>.</summary>
    public int Failures => _failures;

    /// <summary>The upper bound of the wait after <paramref name="failures"/> failures in a row.</summary>
    public TimeSpan Ceiling(int failures)
    {
        if (failures <= 0)
        {
            return TimeSpan.Zero;
        }

        // 2^(n-1) overflows nothing below 2^30; beyond that the cap has long been reached.
        var factor = Math.Pow(2, Math.Min(failures - 1, 30));
        var ticks = Math.Min(Max.Ticks, Initial.Ticks * factor);
        return TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>Counts a failure and returns how long to wait before the next attempt.</summary>
    public TimeSpan Next()
    {
        _failures = Math.Min(_failures + 1, int.MaxValue - 1);
        return TimeSpan.FromTicks((long)(_random.NextDouble() * Ceiling(_failures).Ticks));
    }

    /// <summary>A success: the next failure starts from <see cref="Initial"/> again.</summary>
    public void Reset() => _failures = 0;
}
