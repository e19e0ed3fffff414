using Toolforge.Agents.NodeAgent.Checks;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>Review C1: the hard-reset command's output was read whole (stdout and stderr); now never held past a bound.</summary>
public sealed class ProcessRunnerBoundsTests
{
    [Fact]
    public async Task A_programs_stderr_is_kept_only_to_its_bound_and_its_stdout_discarded_never_held()
    {
        // 8 MB on stderr, 64 MB on stdout, exit 3: the failure carries 16 Ki characters of stderr and a mark.
        var ex = await Assert.ThrowsAsync<CommandFailedException>(() => ProcessRunner.RunDiscardingAsync(
            "/bin/sh", ["-c", "head -c 8000000 /dev/zero | tr '\\0' e >&2; head -c 64000000 /dev/zero; exit 3"], TimeSpan.FromMinutes(1), CancellationToken.None));
        Assert.Equal(3, ex.ExitCode);
        Assert.True(ex.Stderr.Length < ProcessRunner.MaxErrorChars + 100, $"stderr kept: {ex.Stderr.Length} characters");
        Assert.EndsWith($"({8000000 - ProcessRunner.MaxErrorChars} more characters dropped)", ex.Stderr, StringComparison.Ordinal);
    }
}
