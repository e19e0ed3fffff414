using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// A call that ran out of time is told apart by connecting again: a socket left behind that refuses is "down" (the
/// call's deadline passed before it could even connect — CI's starved CPU reported a killed containerd as "hung" — or
/// the peer died while the call waited), one that accepts is "hung".
/// </summary>
public sealed class TimedOutPeerTests
{
    [Fact]
    public async Task Cri_ADeadlinePassedBeforeConnecting_ToASocketLeftBehind_IsDown_ToOneThatAccepts_IsHung()
    {
        using var dir = new TempDir();
        var stale = await LeftBehindAsync(dir["stale.sock"]);
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

    [Fact]
    public async Task Cri_APeerThatDiesWhileVersionWaits_IsDown()
    {
        using var dir = new TempDir();
        await using var dying = DiesAfterAccepting(dir["containerd.sock"]);
        using var client = new CriClient("unix://" + dir["containerd.sock"], TimeSpan.FromSeconds(1));
        var r = await CriProbe.RunAsync(client, "containerd", TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.True(dying.Accepted, "the call never reached the peer");
        Assert.True(r.Condition == CriCondition.Down, $"{r.Condition}: {r.Message}");
        Assert.Contains("left its socket behind", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Docker_APeerThatDiesWhilePingWaits_IsDown_OneThatAcceptsAndNeverAnswers_IsHung()
    {
        using var dir = new TempDir();
        DockerCheck Check(string path) => new(Support.Options(new DockerOptions { Endpoint = "unix://" + path, PingTimeout = TimeSpan.FromSeconds(1), ListTimeout = TimeSpan.FromSeconds(1) }),
            Support.State(), TimeProvider.System, NullLogger<DockerCheck>.Instance);

        await using (var dying = DiesAfterAccepting(dir["docker.sock"]))
        {
            var down = await Check(dir["docker.sock"]).ProbeAsync(CancellationToken.None);
            Assert.True(dying.Accepted, "the call never reached the peer");
            Assert.True(down.Condition == EngineCondition.Down, $"{down.Condition}: {down.Message}");
            Assert.Contains("left its socket behind", down.Message, StringComparison.Ordinal);
        }

        await using var silent = AcceptsAndHolds(dir["silent.sock"]);
        var hung = await Check(dir["silent.sock"]).ProbeAsync(CancellationToken.None);
        Assert.True(hung.Condition == EngineCondition.Hung, $"{hung.Condition}: {hung.Message}");
        Assert.Contains("/_ping did not answer within 1s", hung.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DownAfterTimeout_NamesAMissingOrRefusingSocket_AndIsNullForOneThatAccepts()
    {
        using var dir = new TempDir();
        Task<string?> Ask(string path) => PeerErrors.DownAfterTimeoutAsync("unix://" + path, "Docker", "dockerd", CancellationToken.None);

        Assert.Equal($"no Docker socket at {dir["none.sock"]}: is dockerd running?", await Ask(dir["none.sock"]));
        var stale = await LeftBehindAsync(dir["stale.sock"]);
        Assert.Equal($"Docker refused the connection at {stale}: dockerd has stopped and left its socket behind", await Ask(stale));
        using var listening = Listening(dir["hung.sock"]);
        Assert.Null(await Ask(dir["hung.sock"]));
        Assert.Null(await PeerErrors.DownAfterTimeoutAsync("tcp://127.0.0.1:9", "Docker", "dockerd", CancellationToken.None));
    }

    /// <summary>A socket file nobody listens on any more (what SIGKILL leaves).</summary>
    private static async Task<string> LeftBehindAsync(string path)
    {
        await SpecialFiles.MakeAsync(SpecialFiles.Socket, path);
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

    /// <summary>A peer that accepts the first connection, then dies (its socket file left behind) without answering.</summary>
    private static FakePeer DiesAfterAccepting(string path) => new(path, dieAfterAccept: true);

    /// <summary>A peer that accepts connections and never answers.</summary>
    private static FakePeer AcceptsAndHolds(string path) => new(path, dieAfterAccept: false);

    private sealed class FakePeer : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private readonly List<Socket> _held = [];
        private readonly Task _accepting;

        public FakePeer(string path, bool dieAfterAccept)
        {
            _listener.Bind(new UnixDomainSocketEndPoint(path + ".bound"));
            _listener.Listen(16);
            File.Move(path + ".bound", path); // closing the listener leaves the file behind, as a killed daemon does
            _accepting = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        var s = await _listener.AcceptAsync();
                        lock (_held)
                        {
                            _held.Add(s); // held open: the caller's call waits for its deadline, not an EOF
                        }

                        _accepted = true;
                        if (dieAfterAccept)
                        {
                            _listener.Dispose();
                            return;
                        }
                    }
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                }
            });
        }

        private volatile bool _accepted;

        public bool Accepted => _accepted;

        public async ValueTask DisposeAsync()
        {
            _listener.Dispose();
            await _accepting;
            lock (_held)
            {
                foreach (var s in _held)
                {
                    s.Dispose();
                }
            }
        }
    }
}
