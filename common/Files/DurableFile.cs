using System.Runtime.InteropServices;

namespace Toolforge.Agents.Common.Files;

/// <summary>
/// Replaces a file so that a crash leaves the old content or the new, never a torn file: a new temp file (created
/// with <c>mode</c> from its first byte, when given), written and fsynced, renamed over the old one, then the
/// directory fsynced so the rename itself is on disk. Cursors, rule state and keys are written this way.
/// </summary>
public static partial class DurableFile
{
    public static void Write(string path, string text, UnixFileMode? mode = null) =>
        Write(path, System.Text.Encoding.UTF8.GetBytes(text), mode);

    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode? mode = null)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = $"{full}.{Environment.ProcessId}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (mode is { } m && !OperatingSystem.IsWindows())
        {
            options.Mode = FileMode.CreateNew;
            options.UnixCreateMode = m;
            File.Delete(tmp); // a temp file left by a crash of this very process id
        }

        try
        {
            using (var f = new FileStream(tmp, options))
            {
                f.Write(content);
                f.Flush(flushToDisk: true);
            }

            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }

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
            throw new IOException($"cannot open {dir} to sync it: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (fsync(fd) != 0)
            {
                throw new IOException($"fsync of {dir} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
