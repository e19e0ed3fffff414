using System.Runtime.InteropServices;

namespace Toolforge.Agents.Common.Files;

/// <summary>
/// Replaces a file so that a crash leaves the old content or the new, never a torn file: a new temp file (created
/// with <c>mode</c> from its first byte, when given), written and fsynced, renamed over the old one, then the
/// directory fsynced so the rename itself is on disk. Cursors, rule state and keys are written this way.
/// Only a regular file or nothing is replaced: a device, FIFO, socket, directory or symlink at the path (looked at
/// with lstat, so a symlink is not followed) is refused with <see cref="NotARegularFileException"/> and left alone
/// (`--state-file /dev/null` must not turn the host's /dev/null into a file).
/// </summary>
public static partial class DurableFile
{
    public static void Write(string path, string text, UnixFileMode? mode = null) =>
        Write(path, System.Text.Encoding.UTF8.GetBytes(text), mode);

    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode? mode = null)
    {
        var full = Path.GetFullPath(path);
        EnsureReplaceable(full);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = $"{full}.{Environment.ProcessId}.tmp";
        // A new file, never one already there (a temp file left by a crash of this very process id is deleted
        // first; a symlink planted there is deleted, not followed).
        File.Delete(tmp);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (mode is { } m && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = m;
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

    /// <summary>
    /// Why <see cref="Write(string, ReadOnlySpan{byte}, UnixFileMode?)"/> would refuse <paramref name="path"/>
    /// ("/x is a FIFO, not a regular file"), or null when a regular file or nothing is there.
    /// </summary>
    public static string? Problem(string path)
    {
        var full = Path.GetFullPath(path);
        return KindOf(full) is { } kind ? new NotARegularFileException(full, kind).Message : null;
    }

    /// <summary>
    /// Run as root, gives <paramref name="path"/> to the owner (user and group) of its directory — a daemon's
    /// StateDirectory, owned by its DynamicUser — so a command an admin runs as root beside the daemon (`verify`)
    /// never leaves a file the daemon can no longer read or write. Does nothing for any other user, or off Linux.
    /// </summary>
    public static void OwnLikeDirectory(string path)
    {
        if (!OperatingSystem.IsLinux() || geteuid() != 0)
        {
            return;
        }

        var full = Path.GetFullPath(path);
        if (statx(AtFdCwd, Path.GetDirectoryName(full)!, 0, StatxOwner, out var dir) != 0)
        {
            throw new IOException($"cannot look at the owner of {Path.GetDirectoryName(full)}: errno {Marshal.GetLastPInvokeError()}");
        }

        if (dir.Uid != 0 && lchown(full, dir.Uid, dir.Gid) != 0)
        {
            throw new IOException($"cannot give {full} to the owner of its directory (uid {dir.Uid}): errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Throws <see cref="NotARegularFileException"/> when something other than a regular file is at <paramref name="path"/>.</summary>
    public static void EnsureReplaceable(string path)
    {
        var full = Path.GetFullPath(path);
        if (KindOf(full) is { } kind)
        {
            throw new NotARegularFileException(full, kind);
        }
    }

    // What is at the path when it is neither a regular file nor nothing (lstat: a symlink is reported, not followed);
    // null otherwise, and when it cannot be looked at (the write then fails with its own error).
    private static string? KindOf(string full)
    {
        if (OperatingSystem.IsLinux())
        {
            if (statx(AtFdCwd, full, AtSymlinkNoFollow, StatxType, out var st) != 0)
            {
                return null; // ENOENT: nothing there; EACCES, ENOTDIR...: the write says why
            }

            return (st.Mode & 0xF000) switch
            {
                0x8000 => null,
                0x4000 => "a directory",
                0xA000 => $"a symlink (to {File.ResolveLinkTarget(full, returnFinalTarget: false)?.FullName ?? "?"})",
                0x2000 => "a character device",
                0x6000 => "a block device",
                0x1000 => "a FIFO",
                0xC000 => "a socket",
                var t => $"a file of type 0x{t:x}",
            };
        }

        var info = new FileInfo(full);
        return info.LinkTarget is { } target ? $"a symlink (to {target})"
            : Directory.Exists(full) ? "a directory"
            : null;
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

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const uint StatxOwner = 0x8 | 0x10; // STATX_UID | STATX_GID

    // struct statx (linux/stat.h): the same layout on every architecture, unlike struct stat. Only the type is read.
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct Statx
    {
        public uint Mask;
        public uint BlkSize;
        public ulong Attributes;
        public uint Nlink;
        public uint Uid;
        public uint Gid;
        public ushort Mode;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, out Statx buffer);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
