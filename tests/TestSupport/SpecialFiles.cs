using System.Net.Sockets;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Paths that hold something other than a regular file — a character device (made with mknod, like /dev/null but in
/// the test's own directory: the host's /dev/null is never touched), a FIFO, a socket, a directory, a symlink to a
/// regular file — and what they are, to show a writer left them as they were.
/// </summary>
public static class SpecialFiles
{
    public const string CharDevice = "character device";
    public const string Fifo = "FIFO";
    public const string Socket = "socket";
    public const string Directory = "directory";
    public const string Symlink = "symlink";

    public static readonly string[] Kinds = [CharDevice, Fifo, Socket, Directory, Symlink];

    /// <summary>Makes <paramref name="kind"/> at <paramref name="path"/> (a symlink points at PATH.target, a regular file).</summary>
    public static async Task MakeAsync(string kind, string path)
    {
        switch (kind)
        {
            case CharDevice:
                Require(await Run.ProcessAsync("mknod", [path, "c", "1", "3"]));
                break;
            case Fifo:
                Require(await Run.ProcessAsync("mkfifo", [path]));
                break;
            case Socket:
                using (var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
                {
                    // .NET unlinks the socket file it bound when the socket is closed: a hard link to it stays.
                    s.Bind(new UnixDomainSocketEndPoint(path + ".sock"));
                    Require(await Run.ProcessAsync("ln", [path + ".sock", path]));
                }

                break;
            case Directory:
                System.IO.Directory.CreateDirectory(path);
                File.WriteAllText(Path.Combine(path, "inside"), "inside\n");
                break;
            case Symlink:
                File.WriteAllText(path + ".target", "the target\n");
                File.CreateSymbolicLink(path, path + ".target");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown kind");
        }
    }

    /// <summary>
    /// The path's inode, type, device numbers and (for a symlink) target and the target's content, as lstat sees
    /// them: equal before and after means untouched.
    /// </summary>
    public static async Task<string> IdentityAsync(string path)
    {
        var r = await Run.ProcessAsync("stat", ["--format=%i %F %t:%T %s", path]);
        Require(r);
        var id = r.Stdout.Trim();
        if (new FileInfo(path).LinkTarget is { } target)
        {
            id += $" -> {target}: {File.ReadAllText(path + ".target")}";
        }
        else if (System.IO.Directory.Exists(path))
        {
            id += $" [{string.Join(",", System.IO.Directory.EnumerateFileSystemEntries(path).Select(Path.GetFileName).Order(StringComparer.Ordinal))}]";
        }

        return id;
    }

    private static void Require(ProcessResult r)
    {
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException(r.ToString());
        }
    }
}
