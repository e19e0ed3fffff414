using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// Log:Console defaults to auto: a daemon run by hand on a terminal writes plain lines with their time and level; under
/// systemd (which sets JOURNAL_STREAM when the output goes to the journal) it writes the journal's `&lt;N&gt;` form, the
/// journal adding the time. Every daemon's console log is set up by AgentHost.AddAgentDefaults; the builder's `serve`
/// is the daemon started here (it logs at once that it has no coordinator).
/// </summary>
public sealed class DaemonConsoleTests
{
    private static readonly Regex PlainLine = new(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INF|WRN|ERR|DBG|FTL|VRB) \S", RegexOptions.Multiline);

    private static async Task<string> ServeAsync(TempDir dir, string journalStream)
    {
        Directory.CreateDirectory(dir["images"]);
        // No Log section: the default, auto.
        var config = new JsonObject
        {
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Builder"] = new JsonObject { ["Repository"] = dir["images"], ["DockerEndpoint"] = $"unix://{dir["no-docker.sock"]}" },
        };
        await File.WriteAllTextAsync(dir["builder.json"], config.ToJsonString());
        await using var daemon = BackgroundProcess.StartTool("toolforge-builder-agent", ["serve", "--config", dir["builder.json"]],
            new Dictionary<string, string> { ["JOURNAL_STREAM"] = journalStream });
        Assert.True(await daemon.WaitForOutputAsync("serve takes no build requests", TimeSpan.FromSeconds(60)), daemon.Output);
        var code = await daemon.StopAsync(TimeSpan.FromSeconds(30));
        Assert.True(code == 0, $"exit {code}:\n{daemon.Output}");
        return daemon.Output;
    }

    [Fact]
    public async Task ADaemonRunByHand_LogsPlainLinesWithTheirTime()
    {
        using var dir = new TempDir();
        var output = await ServeAsync(dir, journalStream: string.Empty);
        var line = output.Split('\n').First(l => l.Contains("serve takes no build requests", StringComparison.Ordinal));
        Assert.Matches(PlainLine, line);
        Assert.StartsWith(DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), line, StringComparison.Ordinal);
        Assert.Contains(" WRN BuildQueueService[4001]: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("<4>", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADaemonUnderSystemd_LogsTheJournalsForm()
    {
        using var dir = new TempDir();
        var output = await ServeAsync(dir, journalStream: "8:12345");
        var line = output.Split('\n').First(l => l.Contains("serve takes no build requests", StringComparison.Ordinal));
        Assert.StartsWith("<4>BuildQueueService[4001]: ", line, StringComparison.Ordinal);
        Assert.DoesNotMatch(PlainLine, output);
    }
}
