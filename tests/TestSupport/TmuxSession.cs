using System.Diagnostics;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A real terminal for a test: a detached tmux session on a socket of the test's own (its server is the test's, and is
/// stopped at dispose with `kill-server` on that socket), keys typed with send-keys, the screen read with capture-pane.
/// </summary>
public sealed class TmuxSession : IAsyncDisposable
{
    private readonly string _socket;

    private TmuxSession(string socket) => _socket = socket;

    /// <summary>Starts <paramref name="command"/> (one shell word line, as tmux takes it) in a <paramref name="width"/>×<paramref name="height"/> terminal.</summary>
    public static async Task<TmuxSession> StartAsync(string socket, string command, int width = 200, int height = 30)
    {
        Peer.Require("tmux", "tmux");
        var r = await Run.ProcessAsync("tmux", ["-S", socket, "new-session", "-d", "-x", width.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-y", height.ToString(System.Globalization.CultureInfo.InvariantCulture), "-s", "t", command], TimeSpan.FromSeconds(10));
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"tmux did not start: {r}");
        }

        return new TmuxSession(socket);
    }

    public string Screen()
    {
        var psi = new ProcessStartInfo("tmux", ["-S", _socket, "capture-pane", "-p", "-J", "-t", "t"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return text;
    }

    /// <summary>Types each of <paramref name="keys"/>: a tmux key name (Tab, Enter, C-u, C-c) as that key, anything else as literal text.</summary>
    public async Task KeysAsync(params string[] keys)
    {
        foreach (var k in keys)
        {
            var literal = k is "Tab" or "C-u" or "C-c" or "Enter" ? Array.Empty<string>() : ["-l"];
            var r = await Run.ProcessAsync("tmux", ["-S", _socket, "send-keys", "-t", "t", .. literal, k], TimeSpan.FromSeconds(10));
            if (r.ExitCode != 0)
            {
                throw new InvalidOperationException($"tmux send-keys: {r}");
            }
        }
    }

    /// <summary>True once the screen shows <paramref name="text"/> (a positive signal, polled; false after <paramref name="within"/>).</summary>
    public Task<bool> ShowsAsync(string text, TimeSpan within) => Peer.EventuallyAsync(() => Screen().Contains(text, StringComparison.Ordinal), within);

    public async ValueTask DisposeAsync() => await Run.ProcessAsync("tmux", ["-S", _socket, "kill-server"], TimeSpan.FromSeconds(10));
}
