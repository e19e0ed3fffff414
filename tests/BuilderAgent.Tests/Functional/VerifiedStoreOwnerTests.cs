using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// `toolforge-builder-agent verify` run by an admin as root writes the verdict file and its lock file as the daemon's
/// user (the owner of its StateDirectory), so the daemon under its DynamicUser can still read it and take the lock —
/// before, the daemon's next promotion failed on a root-owned 0640 file.
/// </summary>
public sealed class VerifiedStoreOwnerTests
{
    [Fact]
    public async Task AVerdictRecordedAsRoot_BelongsToTheStateDirectorysOwner()
    {
        using var dir = new TempDir("verified");
        var state = Directory.CreateDirectory(dir["state"]).FullName;
        Assert.Equal(0, (await Run.ProcessAsync("chown", ["61240:61241", state], TimeSpan.FromSeconds(10))).ExitCode);
        var store = new VerifiedStore(Path.Combine(state, "verified.json"));
        store.Record("registry.example/toolforge-base-a", new Verdict("sha256:" + new string('a', 64), true, DateTimeOffset.UnixEpoch, "exit 0"));
        foreach (var f in new[] { store.Path, store.Path + ".lock" })
        {
            Assert.Equal("61240:61241", (await Run.ProcessAsync("stat", ["-c", "%u:%g", f], TimeSpan.FromSeconds(10))).Stdout.Trim());
        }

        Assert.True(store.Read()["registry.example/toolforge-base-a"].Passed);
    }
}
