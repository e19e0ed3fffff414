using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

public sealed class ArtifactsTests
{
    [Fact]
    public async Task PrometheusRules_PassPromtool()
    {
        var promtool = Peer.Require("promtool", "prometheus");
        var r = await Run.ProcessAsync(promtool, ["check", "rules", Path.Combine(Run.RepoRoot, "packaging", "prometheus", "toolforge-agents.rules.yml")]);
        Assert.True(r.ExitCode == 0, r.ToString());
        // Every alert of the shipped file, each loaded (counted from the file, not written here).
        var shipped = File.ReadLines(Path.Combine(Run.RepoRoot, "packaging", "prometheus", "toolforge-agents.rules.yml")).Count(l => l.TrimStart().StartsWith("- alert:", StringComparison.Ordinal));
        Assert.True(shipped >= 11, $"only {shipped} alerts in the shipped rules");
        Assert.Contains($"SUCCESS: {shipped} rules found", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Units_HardeningExposure_IsWithinTheLimits()
    {
        var analyze = Peer.Require("systemd-analyze", "systemd");
        foreach (var (unit, limit) in new[] { ("coordinator", 4.0), ("log-shipper", 4.0), ("builder-agent", 4.0), ("node-agent", 5.0) })
        {
            var r = await Run.ProcessAsync(analyze, ["security", "--offline=yes", Path.Combine(Run.RepoRoot, "systemd", $"toolforge-{unit}.service")]);
            var m = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"Overall exposure level for \S+: (\d+\.\d)");
            Assert.True(m.Success, r.ToString());
            var exposure = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(exposure <= limit, $"{unit}: exposure {exposure} > {limit}");
        }
    }

    [Fact]
    public async Task Programs_BuildForWindows()
    {
        foreach (var project in new[] { "agents/NodeAgent", "agents/LogShipper" })
        {
            // Its own obj/ and bin/ (--artifacts-path): the other test projects build the same libraries at the same
            // time in the source tree's obj/, and sharing it made this build fail now and then.
            using var artifacts = new TempDir("tfa-win");
            var r = await Run.ProcessAsync("dotnet", ["build", Path.Combine(Run.RepoRoot, project), "-c", "Release", "-r", "win-x64", "--artifacts-path", artifacts.Path, "--nologo", "-v", "quiet"], TimeSpan.FromMinutes(10));
            Assert.True(r.ExitCode == 0, r.ToString());
            var exe = project.EndsWith("NodeAgent", StringComparison.Ordinal) ? "toolforge-node-agent.exe" : "toolforge-log-shipper.exe";
            Assert.NotEmpty(Directory.GetFiles(artifacts.Path, exe, SearchOption.AllDirectories));
        }
    }
}
