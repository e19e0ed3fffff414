using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// A bad value for a flag, in every program: one line on stderr naming the flag and what it takes, in words (no .NET
/// type name, no stack trace, no usage screen after it), exit 2. Every numeric flag takes a positive value a timer can
/// hold: 0, negatives, NaN and 1e308 are refused (1e308 seconds used to end in an OverflowException's stack trace).
/// </summary>
public sealed class FlagValueTests
{
    private static readonly string[] Ship = ["ship", "--journal-file", "/nonexistent/x.journal", "--to", "relp://127.0.0.1:9", "--state-file", "/nonexistent/state"];

    public static TheoryData<string, string[], string> BadValues => new()
    {
        { "agentctl", ["nodes", "--timeout", "0"], "--timeout: must be a number above 0 and at most 2147483 (got 0)" },
        { "agentctl", ["nodes", "--timeout", "-1"], "--timeout: must be a number above 0 and at most 2147483 (got -1)" },
        { "agentctl", ["nodes", "--timeout", "NaN"], "--timeout: must be a number above 0 and at most 2147483 (got NaN)" },
        { "agentctl", ["nodes", "--timeout", "1e308"], "--timeout: must be a number above 0 and at most 2147483 (got 1e308)" },
        { "agentctl", ["nodes", "--timeout", "abc"], "--timeout: must be a number (got \"abc\")" },
        { "agentctl", ["findings", "--limit", "0"], "--limit: must be" },
        { "agentctl", ["findings", "--limit", "-3"], "--limit: must be" },
        { "agentctl", ["findings", "--limit", "x"], "--limit: must be a whole number (got \"x\")" },
        { "agentctl", ["builds", "--limit", "0"], "--limit: must be" },
        { "agentctl", ["nodes", "--chunk-size", "0"], "--chunk-size: must be a whole number of at least 1 (got 0)" },
        { "agentctl", ["nodes", "--chunk-size", "10001"], "--chunk-size: must be at most 10000" },
        { "agentctl", ["watch", "--chunk-size", "0"], "--chunk-size: must be a whole number of at least 1 (got 0)" },
        { "agentctl", ["watch", "--chunk-size", "10001"], "--chunk-size: must be at most 10000" },
        { "agentctl", ["nodes", "-o", "bad"], "--output: must be one of table, wide, json, yaml (got \"bad\")" },
        { "agentctl", ["completion", "bsh"], "shell: must be one of bash, zsh, fish (got \"bsh\")" },
        { "toolforge-log-shipper", [.. Ship, "--give-up-after", "-5"], "--give-up-after: must be a positive number of seconds" },
        { "toolforge-log-shipper", [.. Ship, "--give-up-after", "0"], "--give-up-after: must be a positive number of seconds" },
        { "toolforge-log-shipper", [.. Ship, "--give-up-after", "1e308"], "--give-up-after: must be a number above 0 and at most 2147483 (got 1e308)" },
        { "toolforge-log-shipper", [.. Ship, "--give-up-after", "abc"], "--give-up-after: must be a number (got \"abc\")" },
        { "toolforge-log-shipper", [.. Ship, "--relp-window", "-1"], "--relp-window: must be a whole number of at least 1 (got -1)" },
        { "toolforge-log-shipper", [.. Ship, "--relp-window", "abc"], "--relp-window: must be a whole number (got \"abc\")" },
        { "toolforge-builder-agent", ["build", "base-a", "--jobs", "0"], "--jobs: must be a whole number of at least 1 (got 0)" },
        { "toolforge-builder-agent", ["build", "base-a", "--jobs", "-1"], "--jobs: must be a whole number of at least 1 (got -1)" },
        { "toolforge-builder-agent", ["build", "base-a", "--jobs", "abc"], "--jobs: must be a whole number (got \"abc\")" },
        { "toolforge-builder-agent", ["graph", "-o", "svg"], "--output: must be one of tree, dot, json (got \"svg\")" },
        { "toolforge-node-agent", ["check", "--sample", "0"], "--sample: must be a duration between 00:00:01 and 01:00:00" },
        { "toolforge-node-agent", ["check", "--sample", "abc"], "--sample: must be a duration such as \"00:00:30\" (got \"abc\")" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public async Task ABadFlagValue_IsOneLineNamingTheFlag_ExitTwo(string program, string[] args, string expected)
    {
        var empty = Directory.CreateTempSubdirectory("tfa-noconfig-").FullName;
        var r = await Run.DotnetToolAsync(program, args, TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["HOME"] = empty, ["XDG_CONFIG_HOME"] = empty });
        Assert.True(r.ExitCode == 2, r.ToString());
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.StartsWith(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(r.Stdout);
    }

    /// <summary>What the admin typed is echoed cut: a 5,000-character token is not printed whole (nor a control character raw).</summary>
    [Fact]
    public async Task AHugeUnknownToken_IsEchoedCut()
    {
        var r = await Run.DotnetToolAsync("agentctl", ["nodes", "\u001b[2J" + new string('x', 5000)]);
        Assert.Equal(2, r.ExitCode);
        var first = r.Stderr.Split('\n')[0];
        Assert.Contains("[cut ", first, StringComparison.Ordinal);
        Assert.True(first.Length < 1100, $"{first.Length} characters");
        Assert.DoesNotContain("\u001b", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("\\x1b[2J", first, StringComparison.Ordinal);
    }
}
