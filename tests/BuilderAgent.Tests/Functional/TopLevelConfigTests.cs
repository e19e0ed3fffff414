using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// `toolforge-builder-agent --config F serve`: --config before the subcommand, as every daemon takes it, as well as
/// after `serve`. A one-shot command, which reads no configuration file, is told so instead of ignoring it.
/// </summary>
public sealed class TopLevelConfigTests
{
    private const string Program = "toolforge-builder-agent";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Serve_ReadsTheConfigGivenBeforeOrAfterIt(bool before)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["builder.json"], new System.Text.Json.Nodes.JsonObject { ["Builder"] = new System.Text.Json.Nodes.JsonObject { ["Repository"] = dir.Path, ["Jbos"] = 3 } }.ToJsonString());
        string[] args = before ? ["--config", dir["builder.json"], "serve"] : ["serve", "--config", dir["builder.json"]];
        var r = await Run.DotnetToolAsync(Program, args, TimeSpan.FromSeconds(60));
        Assert.Null(ConfigContract.OneConfigLine(Program, r, "Builder:Jbos: unknown key"));
    }

    [Theory]
    [InlineData("build", "base-a")]
    [InlineData("plan", "base-a")]
    [InlineData("graph")]
    public async Task AOneShotCommand_GivenConfig_IsToldOnlyServeReadsIt(params string[] command)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["builder.json"], "{}");
        var r = await Run.DotnetToolAsync(Program, ["--config", dir["builder.json"], .. command, "--repo", dir.Path]);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith($"--config: only serve reads a configuration file; {command[0]} takes its settings as flags (see {Program} {command[0]} --help)", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(r.Stdout);
    }

    [Fact]
    public async Task TwoDifferentConfigs_AreRefused()
    {
        using var dir = new TempDir();
        var r = await Run.DotnetToolAsync(Program, ["--config", dir["a.json"], "serve", "--config", dir["b.json"]]);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith($"--config: given twice ({dir["a.json"]} and {dir["b.json"]}): give one", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_ListsConfigAtTheTopLevel()
    {
        var r = await Run.DotnetToolAsync(Program, ["--help"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("--config <config>", r.Stdout, StringComparison.Ordinal);
    }
}
