using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// Every daemon given a --config that is a directory, or that does not exist, says which in one line (exit 78): not
/// "does not exist" for a directory, not .NET's "Access to the path is denied", no stack trace.
/// </summary>
public sealed class ConfigPathTests
{
    public static TheoryData<string, string[]> Daemons => new()
    {
        { "toolforge-node-agent", [] },
        { "toolforge-node-agent", ["check"] },
        { "toolforge-log-shipper", [] },
        { "toolforge-builder-agent", ["serve"] },
        { "toolforge-coordinator", [] },
    };

    [Theory]
    [MemberData(nameof(Daemons))]
    public async Task AConfigThatIsADirectoryOrMissing_IsOneLineSayingWhich(string program, string[] command)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["etc"]);
        var r = await Run.DotnetToolAsync(program, [.. command, "--config", dir["etc"]], TimeSpan.FromSeconds(60));
        Assert.Null(ConfigContract.OneConfigLine(program, r, $"--config: {dir["etc"]}: is a directory, not a configuration file"));

        r = await Run.DotnetToolAsync(program, [.. command, "--config", dir["absent.json"]], TimeSpan.FromSeconds(60));
        Assert.Null(ConfigContract.OneConfigLine(program, r, $"--config: file {dir["absent.json"]} does not exist"));
    }
}
