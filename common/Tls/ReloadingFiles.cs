namespace Toolforge.Agents.Common.Tls;

/// <summary>
/// Something loaded from files that puppet renews under a running daemon (a certificate and its key, a CA bundle):
/// loaded again when a file's length or last write changes, looked at no more than once a second. While the new files
/// do not load (a key written, its certificate not yet), the value loaded before stays in use and the failure is
/// handed to <c>failed</c> once per state of the files; the next change is tried again.
/// </summary>
public sealed class ReloadingFiles<T>(IReadOnlyList<string> paths, Func<T> load, Action<string>? failed = null, TimeProvider? time = null)
    where T : class
{
    private readonly object _lock = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private T? _value;
    private string? _stamp;
    private string? _failedStamp;
    private long _lookedAt; // TimeProvider timestamp (monotonic: a wall-clock step never freezes the reloads)
    private bool _looked;

    /// <summary>How many times the files were loaded again after a change.</summary>
    public int Reloads { get; private set; }

    /// <summary>The value as the files give it (the first call loads, and throws when they do not load).</summary>
    public T Current
    {
        get
        {
            lock (_lock)
            {
                if (_value is not null && _looked && _time.GetElapsedTime(_lookedAt) < TimeSpan.FromSeconds(1))
                {
                    return _value;
                }

                _lookedAt = _time.GetTimestamp();
                _looked = true;
                var stamp = Stamp();
                if (_value is not null && stamp == _stamp)
                {
                    return _value;
                }

                if (_value is null)
                {
                    _value = load();
                    _stamp = stamp;
                    return _value;
                }

                try
                {
                    // The value loaded before is not disposed: a handshake in flight may still be using it (a renewal
                    // is rare; the garbage collector frees it once nothing holds it).
                    _value = load();
                    _stamp = stamp;
                    Reloads++;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or TlsFileException)
                {
                    if (_failedStamp != stamp)
                    {
                        _failedStamp = stamp;
                        failed?.Invoke(ex.Message);
                    }
                }

                return _value;
            }
        }
    }

    private string Stamp() => FileStamp.Of(paths);
}

/// <summary>What changes when puppet renews a file: each file's length and last write ("-" for a missing one).</summary>
public static class FileStamp
{
    public static string Of(IEnumerable<string> paths) => string.Join('|', paths.Select(p =>
    {
        var f = new FileInfo(p);
        return f.Exists ? $"{f.Length}@{f.LastWriteTimeUtc.Ticks}" : "-";
    }));
}
