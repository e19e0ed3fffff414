using System.Text.Json.Nodes;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The nftables-mode audit on kube-proxy's own rulesets (reference data) and what a test takes out of them.</summary>
public sealed partial class NftablesAuditTests
{
    private static readonly NftAuditOptions Options = new(NodeName: NftReferenceData.Node);

    private static List<Contracts.V1.Finding> Audit(string fixture, string? kernel = null, string? services = null) =>
        NftAudit.Run(ClusterModel.FromKubectlJson([services ?? NftReferenceData.KubectlJson(fixture)]), NftRuleset.Parse(kernel ?? NftReferenceData.Kernel(fixture)), Options);

    private static string Describe(IEnumerable<Contracts.V1.Finding> f) => string.Join("\n", f.Select(x => $"{x.Kind} {x.Subject}: {x.Message}"));

    [Theory]
    [InlineData("overall-rules")]
    [InlineData("sync-repeated-initial")]
    [InlineData("bad-ips")]
    [InlineData("overall-rules-early")]
    [InlineData("nodeport-ipv6")]
    public void EveryReferenceRuleset_IsClean(string fixture)
    {
        var findings = Audit(fixture);
        Assert.True(findings.Count == 0, Describe(findings));
    }

    [Fact]
    public void TheStaleChainFixture_ReportsExactlyItsLeftoverChains()
    {
        var findings = Audit("sync-repeated-stale-chains");
        Assert.True(findings.All(f => f.Kind == "stale-chain"), Describe(findings));
        var stale = findings.Select(f => f.Subject).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, stale.Count);
        // Its header names them: the deleted Service's chains.
        var header = string.Join("\n", File.ReadAllLines(Path.Combine(NftReferenceData.Dir, "sync-repeated-stale-chains.services.txt")).Where(l => l.StartsWith('#')));
        Assert.All(stale, s => Assert.Contains(s, header, StringComparison.Ordinal));
    }

    [Fact]
    public void AgainstNoServices_EverythingIsStale()
    {
        var findings = Audit("overall-rules", services: """{"apiVersion":"v1","kind":"List","items":[]}""");
        Assert.True(findings.Count(f => f.Kind == "stale-rule") >= 10, Describe(findings));
        Assert.True(findings.Count(f => f.Kind == "stale-chain") >= 10, Describe(findings));
    }

    [Fact]
    public void AMapElementTakenOut_IsOneMissingRuleNamingTheService()
    {
        var kernel = JsonNode.Parse(NftReferenceData.Kernel("overall-rules"))!;
        var map = kernel["nftables"]!.AsArray().Select(i => i!["map"]).Single(m => m is not null && (string?)m["name"] == "service-ips")!;
        var elems = map["elem"]!.AsArray();
        var svc4 = elems.Single(e => e!.AsArray()[0]!["concat"]!.AsArray()[0]!.GetValue<string>() == "172.30.0.44")!;
        elems.Remove(svc4);
        var findings = Audit("overall-rules", kernel.ToJsonString());
        var f = Assert.Single(findings);
        Assert.Equal("missing-rule", f.Kind);
        Assert.Equal("ns4/svc4:p80 172.30.0.44:80/tcp", f.Subject);
    }

    [Fact]
    public void AnEndpointTakenOut_IsOneWrongBackend()
    {
        var kernel = JsonNode.Parse(NftReferenceData.Kernel("overall-rules"))!;
        var rule = kernel["nftables"]!.AsArray().Select(i => i!["rule"]).Single(r => r is not null && (string?)r["chain"] == "service-LAUZTJTB-ns4/svc4/tcp/p80"
            && r["expr"]!.AsArray().Any(x => x!["vmap"] is not null))!;
        var vmap = rule["expr"]!.AsArray().Single(x => x!["vmap"] is not null)!["vmap"]!;
        vmap["key"]!["numgen"]!["mod"] = 1;
        vmap["data"]!["set"]!.AsArray().RemoveAt(1);
        var findings = Audit("overall-rules", kernel.ToJsonString());
        var f = Assert.Single(findings);
        Assert.Equal("wrong-backend", f.Kind);
        Assert.Equal("ns4/svc4:p80", f.Subject);
        Assert.Contains("10.180.0.5", f.Details["missing"], StringComparison.Ordinal);
    }

    [Fact]
    public void AMapElementAddedForAServiceThatDoesNotExist_IsOneStaleRule()
    {
        var kernel = JsonNode.Parse(NftReferenceData.Kernel("sync-repeated-initial"))!;
        var map = kernel["nftables"]!.AsArray().Select(i => i!["map"]).Single(m => m is not null && (string?)m["name"] == "service-ips")!;
        map["elem"]!.AsArray().Add(JsonNode.Parse("""[{"concat": ["172.30.0.99", "tcp", 443]}, {"goto": {"target": "service-ULMVA6XW-ns1/svc1/tcp/p80"}}]"""));
        var f = Assert.Single(Audit("sync-repeated-initial", kernel.ToJsonString()));
        Assert.Equal("stale-rule", f.Kind);
        Assert.Equal("172.30.0.99:443/tcp", f.Subject);
    }

    [Fact]
    public void AServiceTheRulesetDoesNotHave_IsMissingRules_AndItsChainsAreNotStale()
    {
        // The API knows svc1 only: svc2's element and chains are left over, not missing.
        var findings = Audit("sync-repeated-initial", services: NftReferenceData.KubectlJson("sync-repeated-initial", s => s == "ns1/svc1"));
        Assert.Contains(findings, f => f.Kind == "stale-rule" && f.Subject.StartsWith("172.30.0.42:8080", StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Kind == "stale-chain" && f.Subject.StartsWith("service-MHHHYRWA-ns2/svc2", StringComparison.Ordinal));
        Assert.DoesNotContain(findings, f => f.Subject.Contains("ns1/svc1", StringComparison.Ordinal));
    }

    [Fact]
    public void ChainNames_MatchEveryVectorOfTheReference()
    {
        var rows = File.ReadAllLines(Path.Combine(NftReferenceData.Dir, "chain-names.tsv")).Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('\t')).ToList();
        Assert.NotEmpty(rows);
        foreach (var r in rows)
        {
            var (kind, name, input, hash) = (r[3], r[4], r[5], r[6]);
            var computed = NftNames.Base(input);
            Assert.StartsWith(hash + "-", computed, StringComparison.Ordinal);
            Assert.Equal(name, kind == "base" ? computed : $"{kind}-{computed}");
        }
    }
}
