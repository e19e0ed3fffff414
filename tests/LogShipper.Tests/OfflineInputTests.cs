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
}
