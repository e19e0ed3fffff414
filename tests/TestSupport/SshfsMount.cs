using System.Diagnostics;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A real network filesystem mount (type fuse.sshfs, one the stuck-process check counts as a network mount) of a
/// directory of the test's own, with no sshd and no network: sshfs's ssh_command is a script that runs OpenSSH's
/// sftp-server on the pipe. Mounted in the test's temp directory; disposing unmounts and stops sshfs by the pid started.
/// </summary>
public sealed class SshfsMount : IAsyncDisposable
{
    private readonly Process _sshfs;

    private SshfsMount(string point, Process sshfs) => (Point, _sshfs) = (point, sshfs);

    /// <summary>Where the filesystem is mounted.</summary>
    public string Point { get; }

    public static async Task<SshfsMount> StartAsync(string directory)
    {
        var sshfs = Peer.Require("sshfs", "sshfs");
        const string sftpServer = "/usr/lib/openssh/sftp-server";
        if (!File.Exists(sftpServer))
        {
            throw Peer.Missing(sftpServer, "install Debian package openssh-sftp-server (./build.sh test does)");
        }

        if (!File.Exists("/dev/fuse"))
        {
            throw Peer.Missing("/dev/fuse", "a kernel with FUSE and /dev/fuse in this container");
        }

        var source = Path.Combine(directory, "export");
        var point = Path.Combine(directory, "mnt");
        Directory.CreateDirectory(source);
        Directory.CreateDirectory(point);
        var script = Path.Combine(directory, "sftp-over-pipe");
        await File.WriteAllTextAsync(script, $"#!/bin/sh\nexec {sftpServer}\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        var process = Process.Start(new ProcessStartInfo(sshfs, ["-f", "-o", $"ssh_command={script}", $"localhost:{source}", point])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        var mount = new SshfsMount(point, process);
        if (!await Peer.EventuallyAsync(() => process.HasExited || mount.Mounted(), TimeSpan.FromSeconds(15)) || !mount.Mounted())
        {
            var why = process.HasExited ? await process.StandardError.ReadToEndAsync() : "no mount after 15 s";
            await mount.DisposeAsync();
            throw new InvalidOperationException($"sshfs did not mount {point}: {why}");
        }

        return mount;
    }

    private bool Mounted() => File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is var p && p.Length > 4 && p[4] == Point && l.Contains(" - fuse.sshfs ", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        if (Mounted())
        {
            using var umount = Process.Start(new ProcessStartInfo("fusermount3", ["-u", "-z", Point]) { UseShellExecute = false })!;
            await umount.WaitForExitAsync();
        }

        if (!_sshfs.HasExited)
        {
            _sshfs.Kill();
            await _sshfs.WaitForExitAsync();
        }

        _sshfs.Dispose();
    }
}
