using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>
/// The cursor is written only where a regular file or nothing is: `ship --state-file /dev/null` once replaced the
/// host's /dev/null with a regular file. The special files here are made in the test's own directory.
/// </summary>
public sealed class StateFileTests
{
    public static TheoryData<string> Kinds => new(SpecialFiles.Kinds);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Ship_StateFileNotARegularFile_OneLine_Exit2_NothingSent_PathUntouched(string kind)
    {
        using var dir = new TempDir();
        var state = dir["state"];
        await SpecialFiles.MakeAsync(kind, state);
        var before = await SpecialFiles.IdentityAsync(state);
        var journal = await Numbered.WriteAsync(dir["n.journal"], 10);
        using var receiver = new TcpListener(IPAddress.Loopback, 0);
        receiver.Start();
        var port = ((IPEndPoint)receiver.LocalEndpoint).Port;

        var r = await Run.DotnetToolAsync("toolforge-log-shipper", ["ship", .. journal, "--to", $"relp://127.0.0.1:{port}", "--state-file", state], TimeSpan.FromMinutes(1));

        Assert.True(r.ExitCode == 2, r.ToString());
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.ToString());
        Assert.StartsWith($"toolforge-log-shipper: --state-file: {state} is a {kind}", lines[0], StringComparison.Ordinal);
        Assert.Equal(string.Empty, r.Stdout);
        Assert.False(receiver.Pending(), "ship connected to the receiver"); // nothing sent: not even a connection
        Assert.Equal(before, await SpecialFiles.IdentityAsync(state));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Daemon_StateFileNotARegularFile_Exit78_NamingTheKey_PathUntouched(string kind)
    {
        using var dir = new TempDir();
        var state = dir["state"];
        await SpecialFiles.MakeAsync(kind, state);
        var before = await SpecialFiles.IdentityAsync(state);
        var journal = await Numbered.WriteAsync(dir["n.journal"], 10);
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Shipper"] = new JsonObject
            {
                ["Destinations"] = new JsonArray(new JsonObject { ["Url"] = $"relp://127.0.0.1:{Peer.FreePort()}" }),
                ["JournalFiles"] = new JsonArray(journal.Where(f => f != "--journal-file").Select(f => (JsonNode)f).ToArray()),
                ["StateFile"] = state,
            },
        };
        await File.WriteAllTextAsync(dir["shipper.json"], config.ToJsonString());

        var r = await Run.DotnetToolAsync("toolforge-log-shipper", ["--config", dir["shipper.json"]], TimeSpan.FromMinutes(1));

        Assert.True(r.ExitCode == 78, r.ToString());
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.ToString());
        Assert.StartsWith($"toolforge-log-shipper: invalid configuration: Shipper:StateFile: {state} is a {kind}", lines[0], StringComparison.Ordinal);
        Assert.Equal(before, await SpecialFiles.IdentityAsync(state));
    }
}
