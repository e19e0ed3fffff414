namespace Toolforge.Agents.BuilderAgent.Build;

/// <summary>
/// One build at a time on this host: the coordinator's build requests and the builds from git take turns (two
/// builds of one tree at once would race on the same tags).
/// </summary>
internal sealed class BuildLane : IDisposable
{
    private readonly SemaphoreSlim _one = new(1, 1);

    public async Task<IDisposable> EnterAsync(CancellationToken ct)
    {
        await _one.WaitAsync(ct).ConfigureAwait(false);
        return new Exit(_one);
    }

    public void Dispose() => _one.Dispose();

    private sealed class Exit(SemaphoreSlim one) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                one.Release();
            }
        }
    }
}
