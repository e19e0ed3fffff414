using System.Runtime.InteropServices;
using System.Text;

namespace Toolforge.Agents.Common.Journal;

/// <summary>A failure of libsystemd's journal API, with the call and errno.</summary>
public sealed class JournalException(string call, int error) : Exception($"{call} failed: {Marshal.GetPInvokeErrorMessage(-error)} (errno {-error})")
{
    public int Error { get; } = error;
}

public enum JournalWait
{
    Nothing = 0,
    Appended = 1,
    Invalidated = 2,
}

/// <summary>Receives an entry's fields from <see cref="JournalReader.ReadFields"/>.</summary>
public interface IJournalFieldSink
{
    void Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);
}

/// <summary>Where reading starts after <see cref="JournalReader.SeekCursor"/>.</summary>
public enum CursorSeek
{
    /// <summary>The saved entry was found; reading continues after it.</summary>
    Found,

    /// <summary>The journal does not hold that entry (rotated away, another machine): reading starts at the nearest entry; there may be a gap.</summary>
    Unknown,
}

/// <summary>
/// The systemd journal through libsystemd's sd_journal API (P/Invoke to libsystemd.so.0). Not thread-safe: use one
/// reader per thread, as sd_journal requires. The data threshold is set to 0 so no field is truncated.
/// </summary>
public sealed partial class JournalReader : IDisposable
{
    private const string Lib = "libsystemd.so.0";
    private const int LocalOnly = 1;
    private IntPtr _j;

    private JournalReader(IntPtr j)
    {
        _j = j;
        Check(sd_journal_set_data_threshold(_j, 0), "sd_journal_set_data_threshold");
    }

    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>The local system journal (what journald writes).</summary>
    public static JournalReader OpenSystem()
    {
        Require();
        Check(sd_journal_open(out var j, LocalOnly), "sd_journal_open");
        return new JournalReader(j);
    }

    public static JournalReader OpenDirectory(string directory)
    {
        Require();
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"journal directory {directory} does not exist");
        }

        Check(sd_journal_open_directory(out var j, directory, 0), $"sd_journal_open_directory({directory})");
        return new JournalReader(j);
    }

    public static JournalReader OpenFiles(IReadOnlyList<string> files)
    {
        Require();
        foreach (var f in files)
        {
            if (Directory.Exists(f))
            {
                throw new IOException($"journal file {f} is a directory, not a file");
            }

            if (!File.Exists(f))
            {
                throw new FileNotFoundException($"journal file {f} does not exist", f);
            }
        }

        var pointers = new IntPtr[files.Count + 1];
        try
        {
            for (var i = 0; i < files.Count; i++)
            {
                pointers[i] = Marshal.StringToCoTaskMemUTF8(Path.GetFullPath(files[i]));
            }

            Check(sd_journal_open_files(out var j, pointers, 0), "sd_journal_open_files");
            return new JournalReader(j);
        }
        finally
        {
            foreach (var p in pointers)
            {
                if (p != IntPtr.Zero)
                {
                    Marshal.FreeCoTaskMem(p);
                }
            }
        }
    }

    /// <summary>FIELD=value; matches on the same field are ORed, on different fields ANDed, until a disjunction.</summary>
    public void AddMatch(string field, string value)
    {
        var bytes = Encoding.UTF8.GetBytes($"{field}={value}");
        Check(sd_journal_add_match(_j, bytes, (nuint)bytes.Length), $"sd_journal_add_match({field}={value})");
    }

    public void AddDisjunction() => Check(sd_journal_add_disjunction(_j), "sd_journal_add_disjunction");

    public void SeekHead() => Check(sd_journal_seek_head(_j), "sd_journal_seek_head");

    /// <summary>The next <see cref="Next"/> returns the first entry at or after <paramref name="micros"/> (wall clock).</summary>
    public void SeekRealtime(long micros) => Check(sd_journal_seek_realtime_usec(_j, (ulong)Math.Max(0, micros)), "sd_journal_seek_realtime_usec");

    public void SeekTail()
    {
        Check(sd_journal_seek_tail(_j), "sd_journal_seek_tail");
        // After seek_tail, next() would return nothing until new entries come; previous() steps onto the last one
        // so that the following Next() returns only new entries.
        sd_journal_previous(_j);
    }

    /// <summary>
    /// Positions the reader so the next <see cref="Next"/> returns the entry after <paramref name="cursor"/>.
    /// When the journal no longer holds that entry, the next entry is the nearest one and the result says so.
    /// </summary>
    public CursorSeek SeekCursor(string cursor)
    {
        Check(sd_journal_seek_cursor(_j, cursor), "sd_journal_seek_cursor");
        var r = sd_journal_next(_j);
        Check(r, "sd_journal_next");
        if (r == 0)
        {
            return CursorSeek.Unknown; // nothing at or after it
        }

        if (sd_journal_test_cursor(_j, cursor) > 0)
        {
            return CursorSeek.Found; // positioned on the saved entry: Next() moves past it
        }

        // Positioned on a different entry: step back so Next() returns it.
        sd_journal_previous(_j);
        return CursorSeek.Unknown;
    }

    /// <summary>Moves to the next entry; false at the end.</summary>
    public bool Next()
    {
        var r = sd_journal_next(_j);
        Check(r, "sd_journal_next");
        return r > 0;
    }

    public string Cursor()
    {
        Check(sd_journal_get_cursor(_j, out var p), "sd_journal_get_cursor");
        try
        {
            return Marshal.PtrToStringUTF8(p) ?? string.Empty;
        }
        finally
        {
            free(p);
        }
    }

    /// <summary>Hands the current entry's cursor to <paramref name="sink"/> as the field "__CURSOR" (no string is made).</summary>
    public unsafe void ReadCursor(IJournalFieldSink sink)
    {
        Check(sd_journal_get_cursor(_j, out var p), "sd_journal_get_cursor");
        try
        {
            sink.Field("__CURSOR"u8, MemoryMarshal.CreateReadOnlySpanFromNullTerminated((byte*)p));
        }
        finally
        {
            free(p);
        }
    }

    public long RealtimeMicros()
    {
        Check(sd_journal_get_realtime_usec(_j, out var usec), "sd_journal_get_realtime_usec");
        return (long)usec;
    }

    /// <summary>A field of the current entry, or null when it has none. Invalid UTF-8 is replaced, never dropped.</summary>
    public unsafe string? Field(string name)
    {
        var r = sd_journal_get_data(_j, name, out var data, out var length);
        if (r == -2 /* ENOENT */)
        {
            return null;
        }

        Check(r, $"sd_journal_get_data({name})");
        var span = new ReadOnlySpan<byte>((void*)data, checked((int)length));
        var eq = span.IndexOf((byte)'=');
        return Encoding.UTF8.GetString(eq >= 0 ? span[(eq + 1)..] : span);
    }

    /// <summary>
    /// Hands every field of the current entry to <paramref name="sink"/> as NAME and value bytes, in one pass over the
    /// entry (each <see cref="Field"/> call walks the entry's items again; reading a dozen fields that way costs a dozen
    /// walks). The spans point into the journal's mapping and are valid only during the call.
    /// </summary>
    public unsafe void ReadFields(IJournalFieldSink sink)
    {
        sd_journal_restart_data(_j);
        while (true)
        {
            var r = sd_journal_enumerate_data(_j, out var data, out var length);
            Check(r, "sd_journal_enumerate_data");
            if (r == 0)
            {
                return;
            }

            var span = new ReadOnlySpan<byte>((void*)data, checked((int)length));
            var eq = span.IndexOf((byte)'=');
            if (eq > 0)
            {
                sink.Field(span[..eq], span[(eq + 1)..]);
            }
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the journal to change.</summary>
    public JournalWait Wait(TimeSpan timeout)
    {
        var r = sd_journal_wait(_j, (ulong)Math.Max(0, timeout.TotalMicroseconds));
        Check(r, "sd_journal_wait");
        return (JournalWait)r;
    }

    public void Dispose()
    {
        if (_j != IntPtr.Zero)
        {
            sd_journal_close(_j);
            _j = IntPtr.Zero;
        }
    }

    private static void Require()
    {
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("the systemd journal is unsupported on this platform");
        }
    }

    private static void Check(int r, string call)
    {
        if (r < 0)
        {
            throw new JournalException(call, r);
        }
    }

    [LibraryImport(Lib)]
    private static partial int sd_journal_open(out IntPtr j, int flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sd_journal_open_directory(out IntPtr j, string path, int flags);

    [LibraryImport(Lib)]
    private static partial int sd_journal_open_files(out IntPtr j, IntPtr[] paths, int flags);

    [LibraryImport(Lib)]
    private static partial void sd_journal_close(IntPtr j);

    [LibraryImport(Lib)]
    private static partial int sd_journal_seek_realtime_usec(IntPtr j, ulong usec);

    [LibraryImport(Lib)]
    private static partial int sd_journal_set_data_threshold(IntPtr j, nuint size);

    [LibraryImport(Lib)]
    private static partial int sd_journal_add_match(IntPtr j, byte[] data, nuint size);

    [LibraryImport(Lib)]
    private static partial int sd_journal_add_disjunction(IntPtr j);

    [LibraryImport(Lib)]
    private static partial int sd_journal_seek_head(IntPtr j);

    [LibraryImport(Lib)]
    private static partial int sd_journal_seek_tail(IntPtr j);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sd_journal_seek_cursor(IntPtr j, string cursor);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sd_journal_test_cursor(IntPtr j, string cursor);

    [LibraryImport(Lib)]
    private static partial int sd_journal_next(IntPtr j);

    [LibraryImport(Lib)]
    private static partial int sd_journal_previous(IntPtr j);

    [LibraryImport(Lib)]
    private static partial int sd_journal_get_cursor(IntPtr j, out IntPtr cursor);

    [LibraryImport(Lib)]
    private static partial int sd_journal_get_realtime_usec(IntPtr j, out ulong usec);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int sd_journal_get_data(IntPtr j, string field, out IntPtr data, out nuint length);

    [LibraryImport(Lib)]
    private static partial void sd_journal_restart_data(IntPtr j);

    [LibraryImport(Lib)]
    private static partial int sd_journal_enumerate_data(IntPtr j, out IntPtr data, out nuint length);

    [LibraryImport(Lib)]
    private static partial int sd_journal_wait(IntPtr j, ulong timeoutUsec);

    [LibraryImport("libc")]
    private static partial void free(IntPtr p);
}
