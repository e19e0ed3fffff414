using System.Net.Sockets;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// A call whose deadline passes before it could even connect (a starved CPU: CI saw a killed containerd reported as
/// "hung") is told apart by connecting again: a socket left behind that refuses is "down", one that accepts is "hung".
/// </summary>
public sealed class TimedOutPeerTests
{
    [Fact]
    public async Task Cri_ADeadlinePassedBeforeConnecting_ToASocketLeftBehind_IsDown_ToOneThatAccepts_IsHung()
    {
        using var dir = new TempDir();
        var stale = LeftBehind(dir["stale.sock"]);
        using (var client = new CriClient("unix://" + stale, TimeSpan.FromSeconds(1)))
        {
            var r = await CriProbe.RunAsync(client, "containerd", TimeSpan.Zero, TimeSpan.FromSeconds(1), CancellationToken.None);
            Assert.True(r.Condition == CriCondition.Down, $"{r.Condition}: {r.Message}");
            Assert.Equal($"down: containerd refused the connection at {stale}: containerd has stopped and left its socket behind", r.Message);
        }

        using var listening = Listening(dir["hung.sock"]);
        using (var client = new CriClient("unix://" + dir["hung.sock"], TimeSpan.FromSeconds(1)))
        {
            var r = await CriProbe.RunAsync(client, "containerd", TimeSpan.Zero, TimeSpan.FromSeconds(1), CancellationToken.None);
            Assert.True(r.Condition == CriCondition.Hung, $"{r.Condition}: {r.Message}");
            Assert.StartsWith("hung: containerd at", r.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The Docker check asks the same question after its /_ping ran out of time (when HttpClient gets to connect before
    /// its cancellation is seen cannot be forced from here, so the question is asked directly).
    /// </summary>
    [Fact]
    public async Task DownAfterTimeout_NamesAMissingOrRefusingSocket_AndIsNullForOneThatAccepts()
    {
        using var dir = new TempDir();
        Task<string?> Ask(string path) => PeerErrors.DownAfterTimeoutAsync("unix://" + path, "Docker", "dockerd", TimeSpan.FromSeconds(1), CancellationToken.None);

        Assert.Equal($"no Docker socket at {dir["none.sock"]}: is dockerd running?", await Ask(dir["none.sock"]));
        var stale = LeftBehind(dir["stale.sock"]);
        Assert.Equal($"Docker refused the connection at {stale}: dockerd has stopped and left its socket behind", await Ask(stale));
        using var listening = Listening(dir["hung.sock"]);
        Assert.Null(await Ask(dir["hung.sock"]));
        Assert.Null(await PeerErrors.DownAfterTimeoutAsync("tcp://127.0.0.1:9", "Docker", "dockerd", TimeSpan.FromSeconds(1), CancellationToken.None));
    }

    /// <summary>
    /// A socket file nobody listens on any more (what SIGKILL leaves): bound, renamed (.NET removes the path it bound
    /// when the socket is closed), closed.
    /// </summary>
    private static string LeftBehind(string path)
    {
        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            s.Bind(new UnixDomainSocketEndPoint(path + ".bound"));
            s.Listen(1);
            File.Move(path + ".bound", path);
        }

        Assert.True(File.Exists(path));
        return path;
    }

    /// <summary>A socket the kernel accepts connections on, and nobody answers (what SIGSTOP leaves).</summary>
    private static Socket Listening(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(path));
        s.Listen(16);
        return s;
    }
}
