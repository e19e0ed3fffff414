using Toolforge.Agents.Common.Journal;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// Saves the newest delivered cursor on its own task, as fast as the disk allows (latest wins): the send loop never
/// waits for an fsync, and after a crash at most what was acknowledged during one save is sent again.
/// </summary>
public sealed class CursorSaver : IAsyncDisposable
{
    private readonly CursorStore _store;
    private readonly SemaphoreSlim _changed = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private string? _latest;
    private string? _saved;

    public CursorSaver(CursorStore store)
    {
        _store = store;
        _loop = Task.Run(LoopAsync);
    }

    public Exception? LastError { get; private set; }

    public void Update(string cursor)
    {
        Volatile.Write(ref _latest, cursor);
        if (_changed.CurrentCount == 0)
        {
            _changed.Release();
        }
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await _changed.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            SaveLatest();
        }
    }

    private void SaveLatest()
    {
        var latest = Volatile.Read(ref _latest);
        if (latest is null || latest == _saved)
        {
            return;
        }

        try
        {
            _store.Save(latest);
            _saved = latest;
            LastError = null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LastError = ex; // the shipper reports it; the next update tries again
        }
    }

    /// <summary>Stops the task and saves the newest cursor synchronously.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        SaveLatest();
        _stop.Dispose();
        _changed.Dispose();
        if (LastError is not null)
        {
            throw new IOException($"cannot save the cursor to {_store.Path}: {LastError.Message}", LastError);
        }
    }
}
