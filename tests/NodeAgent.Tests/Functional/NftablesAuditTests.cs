using System.Text.Json.Nodes;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class NftablesAuditTests
{
    [Fact]
    public async Task Offline_AuditNftables_IsCleanOnAFixture_AndExitsTwoOnSomethingThatIsNotNftJson()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["all.json"], NftReferenceData.KubectlJson("overall-rules"));
        var clean = await Run.DotnetToolAsync("toolforge-node-agent",
            ["audit", "nftables", "--services", dir["all.json"], "--nft-json", Path.Combine(NftReferenceData.Dir, "overall-rules.kernel.json"), "--node", NftReferenceData.Node,
                "--forbid-nodeports", "false"]); // the fixture has NodePorts, which the daemon's default reports
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.StartsWith("clean: 6 services", clean.Stdout, StringComparison.Ordinal);

        await File.WriteAllTextAsync(dir["bad.json"], "{\"not\": \"nft\"}");
        var bad = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "nftables", "--services", dir["all.json"], "--nft-json", dir["bad.json"]]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("nftables", bad.Stderr, StringComparison.Ordinal);
    }
}
