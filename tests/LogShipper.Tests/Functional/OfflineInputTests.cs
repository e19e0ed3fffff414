using System.Diagnostics;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

public sealed class OfflineInputTests
{
    [Fact]
    public async Task Ship_AFileThatIsNotAJournal_FailsAtOnceWithOneLine()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["not.journal"], "this is not a journal file\n");
        var sw = Stopwatch.StartNew();
        var r = await Run.DotnetToolAsync("toolforge-log-shipper",
            ["ship", "--journal-file", dir["not.journal"], "--to", "relp://127.0.0.1:9", "--state-file", dir["state"], "--give-up-after", "60"]);
        sw.Stop();
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("not.journal: not a journal file", r.Stderr, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
        Assert.False(File.Exists(dir["state"]));
    }

    [Theory]
    [InlineData("--to", "ftp://127.0.0.1:9", "--to: ")]
    [InlineData("--relp-window", "0", "--relp-window: must be a whole number of at least 1 (got 0)")]
    [InlineData("--relp-window", "100001", "--relp-window: must be between 1 and 100000 (got 100001)")]
    [InlineData("--give-up-after", "-5", "--give-up-after: must be a positive number of seconds")]
    public async Task Ship_ABadFlag_IsNamedAsTyped_NotAsTheDaemonsKey(string flag, string value, string expected)
    {
        using var dir = new TempDir();
        string[] args = ["ship", "--journal-file", dir["x.journal"], "--to", "relp://127.0.0.1:9", "--state-file", dir["state"]];
        var withFlag = flag == "--to" ? args.Select(a => a == "relp://127.0.0.1:9" ? value : a).ToArray() : [.. args, flag, value];
        var r = await Run.DotnetToolAsync("toolforge-log-shipper", withFlag);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, Assert.Single(r.Stderr.Trim().Split('\n')), StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(r.Stderr, System.Text.RegularExpressions.Regex.Escape(expected))); // said once
        Assert.DoesNotContain("--:", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Destinations", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ship_AJournalFileThatIsADirectory_IsCalledSo()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["a-dir"]);
        var r = await Run.DotnetToolAsync("toolforge-log-shipper", ["ship", "--journal-file", dir["a-dir"], "--to", "relp://127.0.0.1:9", "--state-file", dir["state"]]);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"toolforge-log-shipper: --journal-file {dir["a-dir"]}: journal file {dir["a-dir"]} is a directory, not a file", r.Stderr.Trim());
    }
}
