using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>Every program explains itself, without reading any configuration.</summary>
public sealed class ProgramsTests
{
    public static TheoryData<string> Programs => new() { "toolforge-coordinator", "toolforge-node-agent", "toolforge-builder-agent", "toolforge-log-shipper", "agentctl" };

    // A home and config directory with nothing in them: no /etc/toolforge-agents file is read for --help either way.
    private static Task<ProcessResult> RunAsync(string program, params string[] args)
    {
        var empty = Directory.CreateTempSubdirectory("tfa-noconfig-").FullName;
        return Run.DotnetToolAsync(program, args, TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["HOME"] = empty, ["XDG_CONFIG_HOME"] = empty });
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task HelpAndVersion_ExitZero_WithNoConfiguration(string program)
    {
        foreach (var flag in new[] { "--help", "-h" })
        {
            var help = await RunAsync(program, flag);
            Assert.True(help.ExitCode == 0, help.ToString());
            Assert.Contains("Usage:", help.Stdout, StringComparison.Ordinal);
            Assert.Contains(program, help.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("invalid configuration", help.Stdout + help.Stderr, StringComparison.Ordinal);
        }

        var version = await RunAsync(program, "--version");
        Assert.True(version.ExitCode == 0, version.ToString());
        Assert.Matches($"^{program} \\d+\\.\\d+\\.\\d+", version.Stdout.Trim());
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task AnUnknownFlag_IsUsageOnStderr_AndExitTwo(string program)
    {
        var r = await RunAsync(program, "--no-such-flag");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--no-such-flag", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("Usage:", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, r.Stdout);
    }

    [Theory]
    [InlineData("toolforge-node-agent", "--help", "audit")]
    [InlineData("toolforge-log-shipper", "--help", "ship")]
    [InlineData("toolforge-builder-agent", "--help", "serve")]
    [InlineData("toolforge-coordinator", "--help", "--config")]
    public async Task Help_NamesTheSubcommandsAndTheDefaultConfig(string program, string flag, string mentions)
    {
        var r = await RunAsync(program, flag);
        Assert.Contains(mentions, r.Stdout, StringComparison.Ordinal);
        if (program != "toolforge-builder-agent")
        {
            Assert.Contains("/etc/toolforge-agents/", r.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ADaemonWithoutItsConfigFile_SaysSoInOneLine_Exit78()
    {
        var r = await RunAsync("toolforge-log-shipper", "--config", "/nonexistent/log-shipper.json");
        Assert.Equal(78, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("/nonexistent/log-shipper.json", r.Stderr, StringComparison.Ordinal);
    }
}
