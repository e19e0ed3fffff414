using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.AgentCtl.Tests;

/// <summary>
/// The lifecycle verbs' flags are checked before anything is asked of the coordinator: a missing --for or --reason,
/// a duration that is not one, or too long, is one line naming the flag and exit 2 (no coordinator is configured here,
/// so reaching it would be another error).
/// </summary>
public sealed partial class LifecycleFlagsTests
{
    [Theory]
    [InlineData("--reason", "r", "--for: required, e.g. --for 2h (or --remove)")]
    [InlineData("--for", "2h", "--reason: required")]
    [InlineData("--for", "soon", "--for: \"soon\" is not a duration such as 30m, 2h or 3d")]
    [InlineData("--for", "31d", "--for: at most 30d")]
    [InlineData("--for", "0s", "--for: \"0s\" is not a duration such as 30m, 2h or 3d")]
    public async Task Ack_refuses_a_missing_or_bad_flag_with_one_line_and_exit_2(string flag, string value, string expected)
    {
        var args = new List<string> { "ack", "0123456789ab", flag, value };
        if (flag == "--for" && expected.StartsWith("--for", StringComparison.Ordinal))
        {
            args.AddRange(["--reason", "r"]);
        }

        var r = await Run.DotnetToolAsync("agentctl", args, TimeSpan.FromSeconds(30));
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // one line
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ack_remove_takes_no_duration()
    {
        var r = await Run.DotnetToolAsync("agentctl", ["ack", "0123456789ab", "--remove", "--for", "2h"], TimeSpan.FromSeconds(30));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--for: not with --remove", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_cancel_and_forget_are_listed_in_help()
    {
        var help = await Run.DotnetToolAsync("agentctl", ["--help"], TimeSpan.FromSeconds(30));
        Assert.Contains("forget", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("ack", help.Stdout, StringComparison.Ordinal);
        var build = await Run.DotnetToolAsync("agentctl", ["build", "--help"], TimeSpan.FromSeconds(30));
        Assert.Contains("cancel", build.Stdout, StringComparison.Ordinal);
    }
}
