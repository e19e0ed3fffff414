using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.AgentCtl.Tests;

/// <summary>
/// A file agentctl cannot use is named by what the admin gave (the flag, or the key of the config file) and the real
/// cause: a directory is a directory (not "does not exist", not "Access to the path is denied"), a missing file does
/// not exist (not "Could not find file"), broken JSON is named by line and byte without echoing it. One line, no stack
/// trace, no .NET type name; nothing is sent.
/// </summary>
public sealed class InputFileTests
{
    private static async Task<string> OneLineAsync(TempDir dir, params string[] args)
    {
        var r = await Run.DotnetToolAsync("agentctl", args, TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["HOME"] = dir.Path, ["XDG_CONFIG_HOME"] = dir.Path });
        Assert.True(r.ExitCode == 2, r.ToString()); // bad input
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Could not find", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Access to the path", line, StringComparison.Ordinal);
        return line;
    }

    [Fact]
    public async Task TheConfigFile_ADirectory_Missing_OrNotJson_IsNamedWithTheFlag()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["a-dir"]);
        Assert.Equal($"agentctl: --config {dir["a-dir"]}: is a directory, not a configuration file", await OneLineAsync(dir, "--config", dir["a-dir"], "nodes"));
        Assert.Equal($"agentctl: --config {dir["absent.json"]}: does not exist", await OneLineAsync(dir, "--config", dir["absent.json"], "nodes"));
        await File.WriteAllTextAsync(dir["bad.json"], "server: " + new string('x', 3000));
        var bad = await OneLineAsync(dir, "--config", dir["bad.json"], "nodes");
        Assert.Equal($"agentctl: --config {dir["bad.json"]}: not valid JSON (a syntax error at line 1, byte 1)", bad);
    }

    [Fact]
    public async Task ACertificateKeyOrCa_ADirectoryOrMissing_IsNamedWithItsFlag()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["a-dir"]);
        string[] server = ["nodes", "--server", $"https://127.0.0.1:{Peer.FreePort()}"];
        Assert.Equal($"agentctl: --cert: {dir["a-dir"]} is a directory, not a file",
            await OneLineAsync(dir, [.. server, "--cert", dir["a-dir"], "--key", dir["k"], "--ca", dir["c"]]));
        Assert.Equal($"agentctl: --cert: {dir["absent.pem"]} does not exist",
            await OneLineAsync(dir, [.. server, "--cert", dir["absent.pem"], "--key", dir["k"], "--ca", dir["c"]]));

        // Given by the config file: its key and the file named.
        await File.WriteAllTextAsync(dir["agentctl.json"], $$"""{"server": "https://127.0.0.1:{{Peer.FreePort()}}", "cert": "{{dir["gone.pem"]}}", "key": "{{dir["k"]}}", "ca": "{{dir["c"]}}"}""");
        Assert.Equal($"agentctl: \"cert\" in {dir["agentctl.json"]}: {dir["gone.pem"]} does not exist", await OneLineAsync(dir, "--config", dir["agentctl.json"], "nodes"));
    }
}
