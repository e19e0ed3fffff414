namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// The cursor of the last delivered entry: written to a temp file, fsynced, renamed over the old one (and the
/// directory fsynced), so a crash leaves either the old cursor or the new one, never a torn file.
/// </summary>
public sealed partial class CursorStore(string path)
{
    public string Path { get; } = path;

    /// <summary>The saved cursor; null when there is none; throws <see cref="InvalidDataException"/> when the file is not a cursor.</summary>
    public string? Load()
    {
        if (!File.Exists(Path))
        {
            return null;
        }

        var text = File.ReadAllText(Path).Trim();
        // A journal cursor is "s=...;i=...;b=...;m=...;t=...;x=..." in printable ASCII.
        if (text.Length == 0 || text.Length > 512 || !text.Contains("s=", StringComparison.Ordinal) || text.Any(c => c < 33 || c > 126))
        {
            throw new InvalidDataException($"{Path} does not hold a journal cursor ({text.Length} characters)");
        }

        return text;
    }

    public void Save(string cursor)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
        {
            f.Write(System.Text.Encoding.ASCII.GetBytes(cursor));
            f.Flush(flushToDisk: true);
        }

        File.Move(tmp, Path, overwrite: true);
        if (OperatingSystem.IsLinux())
        {
            SyncDirectory(dir);
        }
    }

    // The rename is durable only once the directory is on disk too.
    private static void SyncDirectory(string dir)
    {
        var fd = open(dir, 0x10000 /* O_RDONLY | O_DIRECTORY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open {dir} to sync it: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (fsync(fd) != 0)
            {
                throw new IOException($"fsync of {dir} failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static partial int close(int fd);
}

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
