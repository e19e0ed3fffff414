using Toolforge.Agents.Common.Files;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// A file a command writes as root beside a daemon (the builder's `verify` beside its DynamicUser daemon) is given
/// to the owner of its directory, so the daemon can still read and replace it.
/// </summary>
public sealed class DurableFileOwnerTests
{
    [Fact]
    public async Task AFileWrittenByRoot_IsGivenToItsDirectorysOwner()
    {
        Assert.Equal("0", (await Run.ProcessAsync("id", ["-u"], TimeSpan.FromSeconds(10))).Stdout.Trim()); // the tests run as root (CI)
        using var dir = new TempDir("owner");
        var state = Directory.CreateDirectory(dir["state"]).FullName;
        Assert.Equal(0, (await Run.ProcessAsync("chown", ["61234:61235", state], TimeSpan.FromSeconds(10))).ExitCode);
        var file = Path.Combine(state, "verified.json");
        DurableFile.Write(file, "{}");
        Assert.Equal("0:0", await OwnerAsync(file)); // written by root: root's until given away
        DurableFile.OwnLikeDirectory(file);
        Assert.Equal("61234:61235", await OwnerAsync(file));

        // A directory root owns: nothing changes.
        var rootOwned = dir["plain.json"];
        DurableFile.Write(rootOwned, "{}");
        DurableFile.OwnLikeDirectory(rootOwned);
        Assert.Equal("0:0", await OwnerAsync(rootOwned));
    }

    private static async Task<string> OwnerAsync(string path) => (await Run.ProcessAsync("stat", ["-c", "%u:%g", path], TimeSpan.FromSeconds(10))).Stdout.Trim();
}
