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
