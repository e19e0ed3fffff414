namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// Serializes work per key (a node, a build) across awaits, with a fixed number of stripes so memory does not grow
/// with the keys: two keys may share a stripe and then wait for each other, which costs a little latency, never
/// correctness. Used so a change is decided against the last <em>stored</em> state and applied to memory after its
/// write committed, without a second change of the same key deciding against the same base meanwhile.
/// </summary>
public sealed class StripedAsyncLock
{
    private readonly SemaphoreSlim[] _stripes;

    public StripedAsyncLock(int stripes = 256)
    {
        _stripes = new SemaphoreSlim[stripes];
        for (var i = 0; i < stripes; i++)
        {
            _stripes[i] = new SemaphoreSlim(1, 1);
        }
    }

    /// <summary>
    /// Waits for <paramref name="key"/>'s stripe; dispose the result to release it. A caller that gives up (its call's
    /// deadline passed) stops waiting and leaves nothing behind; once entered, the work under the lock is not cut short.
    /// </summary>
    public async ValueTask<Releaser> EnterAsync(string key, CancellationToken ct = default)
    {
        var s = _stripes[(int)((uint)StringComparer.Ordinal.GetHashCode(key) % (uint)_stripes.Length)];
        await s.WaitAsync(ct).ConfigureAwait(false);
        return new Releaser(s);
    }

    public readonly struct Releaser(SemaphoreSlim stripe) : IDisposable
    {
        public void Dispose() => stripe.Release();
    }
}
