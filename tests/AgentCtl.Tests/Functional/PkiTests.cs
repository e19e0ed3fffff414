using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.AgentCtl.Tests;

public sealed class PkiTests
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

    [Theory]
    [InlineData("ca")]
    [InlineData("CA")]
    [InlineData("")]
    [InlineData("a..b")]
    [InlineData("a/b")]
    [InlineData("-a.example")]
    [InlineData("x\u001b]0;t")]
    public async Task ANameThatIsNoDnsName_OrTheCasOwn_IsRefused_AndNothingIsWritten(string name)
    {
        using var tmp = new TempDir();
        var dir = tmp["certs"];
        var first = await Run.DotnetToolAsync("agentctl", ["pki", dir, "node-1.example"]);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.StartsWith("made a new CA in", first.Stdout, StringComparison.Ordinal);
        var before = Directory.GetFiles(dir).Order(StringComparer.Ordinal).Select(f => (f, File.ReadAllText(f))).ToList();

        var r = await Run.DotnetToolAsync("agentctl", ["pki", dir, "node-2.example", name]);
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.StartsWith("agentctl pki: name \"", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Directory.GetFiles(dir).Order(StringComparer.Ordinal).Select(f => (f, File.ReadAllText(f))).ToList());

        // In a folder that does not exist yet: none is made.
        var fresh = tmp["fresh"];
        Assert.Equal(2, (await Run.DotnetToolAsync("agentctl", ["pki", fresh, name])).ExitCode);
        Assert.False(Directory.Exists(fresh));
    }

    [Fact]
    public async Task ARerun_SaysItReusedTheCa_AndClientCertificatesCarryOnlyTheirName()
    {
        using var tmp = new TempDir();
        var dir = tmp["certs"];
        Assert.StartsWith("made a new CA in", (await Run.DotnetToolAsync("agentctl", ["pki", dir, "--server-name", "coordinator"])).Stdout, StringComparison.Ordinal);
        var ca = await File.ReadAllTextAsync(Path.Combine(dir, "ca.pem"));
        var again = await Run.DotnetToolAsync("agentctl", ["pki", dir, "admin.example"]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.StartsWith($"reused the CA in {dir}; wrote 1 certificate(s)", again.Stdout, StringComparison.Ordinal);
        Assert.Equal(ca, await File.ReadAllTextAsync(Path.Combine(dir, "ca.pem")));

        using var client = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(dir, "admin.example.pem")));
        var san = client.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["admin.example"], san.EnumerateDnsNames());
        Assert.Empty(san.EnumerateIPAddresses());
    }
}
