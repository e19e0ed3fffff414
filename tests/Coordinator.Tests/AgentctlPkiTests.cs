using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

public sealed class AgentctlPkiTests
{
    [Fact]
    public async Task Pki_WritesKeysAs0600_AndItsDirectoryAs0700_EvenOverAWorldReadableOldKey()
    {
        using var tmp = new TempDir();
        var dir = tmp["certs"];
        var r = await Run.DotnetToolAsync("agentctl", ["pki", dir, "node-1.example", "--server-name", "coordinator"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        foreach (var key in new[] { "ca.key", "node-1.example.key", "coordinator.key" })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir, key)));
        }

        // An old key left readable by everyone is replaced, not rewritten in place with its old mode.
        var old = Path.Combine(dir, "node-2.example.key");
        await File.WriteAllTextAsync(old, "old");
        File.SetUnixFileMode(old, (UnixFileMode)Convert.ToInt32("644", 8));
        var again = await Run.DotnetToolAsync("agentctl", ["pki", dir, "node-2.example"]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(old));
        Assert.Contains("PRIVATE KEY", await File.ReadAllTextAsync(old), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }
}
