using System.Text.Json.Nodes;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The nftables audit never calls a table clean that is not kube-proxy's layout: an emptied table, an absent map, set or
/// chain, a dispatch chain that was flushed. Each taken out of a reference ruleset in a real kernel and listed by it.
/// </summary>
public sealed class NftablesLayoutTests
{
    private static readonly NftAuditOptions Options = new(NodeName: NftReferenceData.Node);

    private static string Describe(IEnumerable<Contracts.V1.Finding> f) => string.Join("\n", f.Select(x => $"{x.Kind} {x.Subject}: {x.Message}"));

    private static List<Contracts.V1.Finding> Audit(string kernel, string fixture = "overall-rules") =>
        NftAudit.Run(ClusterModel.FromKubectlJson([NftReferenceData.KubectlJson(fixture)]), NftRuleset.Parse(kernel), Options);

    // The reference ruleset loaded into a namespace's kernel, changed by the nft commands given, listed with nft -j.
    private static async Task<string> KernelAsync(params string[][] changes)
    {
        Peer.Require("nft", "nftables");
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RunAsync("nft", "-f", Path.Combine(NftReferenceData.Dir, "overall-rules.nft"));
        foreach (var change in changes)
        {
            await ns.RunAsync("nft", change);
        }

        return (await ns.RunAsync("nft", "-j", "list", "table", "ip", "kube-proxy")).Stdout;
    }

    [Fact]
    public async Task ServiceIpsMapRemoved_IsAMissingObjectNamingIt()
    {
        // The kernel refuses to delete a map a rule still looks up: the services chain's lookup goes first.
        var kernel = await KernelAsync(["flush", "chain", "ip", "kube-proxy", "services"], ["delete", "map", "ip", "kube-proxy", "service-ips"]);
        var findings = Audit(kernel);
        var missing = Assert.Single(findings, f => f.Kind == "missing-object");
        Assert.Equal("map ip kube-proxy service-ips", missing.Subject);
        Assert.Equal(Contracts.V1.Severity.Error, missing.Severity);
        Assert.Contains(findings, f => f.Kind == "missing-rule" && f.Subject == "chain ip kube-proxy services" && f.Details["expected"] == "@service-ips");
        Assert.Contains(findings, f => f.Kind == "missing-rule" && f.Subject == "chain ip kube-proxy services" && f.Details["expected"] == "@service-nodeports");
        Assert.True(findings.Count == 3, Describe(findings));
    }

    [Fact]
    public async Task ServicesChainFlushed_IsAMissingRuleForEachLookup()
    {
        var findings = Audit(await KernelAsync(["flush", "chain", "ip", "kube-proxy", "services"]));
        Assert.True(findings.Count == 2 && findings.All(f => f.Kind == "missing-rule" && f.Subject == "chain ip kube-proxy services"), Describe(findings));
    }

    [Theory]
    [InlineData("service-nodeports", "map")]
    [InlineData("no-endpoint-services", "map")]
    [InlineData("no-endpoint-nodeports", "map")]
    [InlineData("firewall-ips", "map")]
    [InlineData("cluster-ips", "set")]
    public async Task AWholeMapOrSetRemoved_IsAMissingObject(string name, string kind)
    {
        // Taken out of the kernel's listing (the kernel itself keeps a map or set that a rule still looks up).
        var kernel = JsonNode.Parse(await KernelAsync())!;
        var items = kernel["nftables"]!.AsArray();
        foreach (var item in items.Where(i => i![kind] is { } o && (string?)o["name"] == name).ToList())
        {
            items.Remove(item);
        }

        var findings = Audit(kernel.ToJsonString());
        Assert.True(findings.Count == 1, Describe(findings));
        Assert.Equal(("missing-object", $"{kind} ip kube-proxy {name}"), (findings[0].Kind, findings[0].Subject));
    }

    [Fact]
    public async Task AnEmptyKubeProxyTable_IsAnUnknownLayout_NeverClean()
    {
        Peer.Require("nft", "nftables");
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RunAsync("nft", "add", "table", "ip", "kube-proxy");
        var kernel = (await ns.RunAsync("nft", "-j", "list", "table", "ip", "kube-proxy")).Stdout;
        var f = Assert.Single(Audit(kernel));
        Assert.Equal(("unknown-layout", "table ip kube-proxy"), (f.Kind, f.Subject));
        Assert.Contains("it is empty", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offline_AuditNftables_ExitsOneOnAnEmptyTableAndOnARulesetWithoutServiceIps()
    {
        Peer.Require("nft", "nftables");
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["all.json"], NftReferenceData.KubectlJson("overall-rules"));
        await using (var ns = await NetNamespace.CreateAsync())
        {
            await ns.RunAsync("nft", "add", "table", "ip", "kube-proxy");
            await File.WriteAllTextAsync(dir["empty.json"], (await ns.RunAsync("nft", "-j", "list", "table", "ip", "kube-proxy")).Stdout);
        }

        await File.WriteAllTextAsync(dir["no-service-ips.json"], await KernelAsync(["flush", "chain", "ip", "kube-proxy", "services"], ["delete", "map", "ip", "kube-proxy", "service-ips"]));
        var empty = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "nftables", "--services", dir["all.json"], "--nft-json", dir["empty.json"], "--node", NftReferenceData.Node]);
        Assert.True(empty.ExitCode == 1, empty.ToString());
        Assert.Contains("unknown-layout", empty.Stdout, StringComparison.Ordinal);

        var noMap = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "nftables", "--services", dir["all.json"], "--nft-json", dir["no-service-ips.json"], "--node", NftReferenceData.Node]);
        Assert.True(noMap.ExitCode == 1, noMap.ToString());
        Assert.Contains("missing-object", noMap.Stdout, StringComparison.Ordinal);
        Assert.Contains("service-ips", noMap.Stdout, StringComparison.Ordinal);
    }
}
