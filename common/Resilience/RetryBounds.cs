namespace Toolforge.Agents.Common.Resilience;

/// <summary>
/// The two bounds of a retry loop's backoff: the ceiling of the first wait (<see cref="Initial"/>, doubled after each
/// further failure) and the cap (<see cref="Max"/>). Each loop names its own, e.g.
/// <c>static readonly RetryBounds Reconnect = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(30))</c>.
/// </summary>
public readonly record struct RetryBounds(TimeSpan Initial, TimeSpan Max)
{
    /// <summary>A configured pair where Max may have been set below Min: the cap is then Min.</summary>
    public static RetryBounds AtLeast(TimeSpan initial, TimeSpan max) => new(initial, max < initial ? initial : max);

    public override string ToString() => $"{Initial.TotalSeconds:0.###} s doubling to at most {Max.TotalSeconds:0.###} s";
}
