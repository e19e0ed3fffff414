using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>
/// The nftables audit's compare step: one Service port's expected table (from <see cref="NftExpectations"/>) against
/// a ruleset written from that expectation, then changed the way a broken kube-proxy or an admin would change it.
/// </summary>
public sealed class NftComparisonTests
{
    private const string Family = "ip";
    private static readonly string Base = NftNames.ServicePortBase("tool-a", "web", "tcp", "http");

    private static NftExpected Expected(params string[] endpoints)
    {
        var svc = new ServiceSpec("tool-a", "web", "NodePort", "10.96.0.10", [new ServicePortSpec("http", 80, "TCP", 30080)], [], [], false, false);
        EndpointSliceSpec[] slices = [new("tool-a", "web", endpoints.Select(a => new EndpointSpec(a, true, true, false, "node-1")).ToList(), [new ServicePortSpec("http", 8080, "TCP", 0)])];
        return NftExpectations.Of(Family, new ClusterModel([svc], slices), new SlicesByService(slices), new NftAuditOptions(NodeName: "node-1"));
    }

    // What kube-proxy writes for the expectation: the layout, each wanted element, each chain's numgen and DNAT, the cluster-ips set.
    private static NftRuleset Written(NftExpected expected)
    {
        var rules = new NftRuleset();
        rules.Families.Add(Family);
        foreach (var map in NftLayout.Maps)
        {
            rules.Maps[(Family, map)] = expected.Wants.Where(w => w.Map == map).ToDictionary(w => w.Key, w => new NftRuleset.MapElement(w.Key, w.Verdict, null), StringComparer.Ordinal);
        }

        foreach (var (chain, targets) in new[] { ("nat-prerouting", "services"), ("nat-output", "services"), ("services", "@service-ips @service-nodeports"), ("reject-chain", string.Empty), ("cluster-ips-check", string.Empty) })
        {
            Chain(rules, chain).Targets.UnionWith(targets.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        foreach (var b in expected.Backends)
        {
            Chain(rules, b.Chain).NumgenTargets.AddRange(b.EndpointChains);
            Chain(rules, b.Chain).NumgenMod = b.EndpointChains.Count;
        }

        foreach (var (chain, (_, target)) in expected.Dnats)
        {
            Chain(rules, chain).Dnats.Add(target);
        }

        rules.Sets[(Family, NftLayout.ClusterIps)] = new HashSet<string>(expected.ClusterIps, StringComparer.Ordinal);
        return rules;
    }

    private static NftRuleset.Chain Chain(NftRuleset rules, string name)
    {
        if (!rules.Chains.TryGetValue((Family, name), out var c))
        {
            rules.Chains[(Family, name)] = c = new NftRuleset.Chain(name) { Rules = 1 };
        }

        return c;
    }

    // layout, then maps, cluster IPs, backends, stale objects, as NftAudit.Run does for a family.
    private static List<Finding> Compare(NftExpected expected, NftRuleset rules)
    {
        var findings = new List<Finding>();
        if (NftLayout.Compare(Family, expected, rules, findings))
        {
            NftComparison.Maps(Family, expected.Wants, rules, findings);
            NftComparison.ClusterIps(Family, expected.ClusterIps, rules, findings);
            NftComparison.Backends(Family, expected.Backends, expected.Dnats, rules, findings);
            NftComparison.StaleObjects(Family, expected.Known, rules, findings);
        }

        return findings;
    }

    private static (string Kind, Severity Severity, string Subject) Brief(Finding f) => (f.Kind, f.Severity, f.Subject);

    [Fact]
    public void WhatKubeProxyWrites_IsClean()
    {
        Assert.Empty(Compare(Expected("192.168.1.1", "192.168.1.2"), Written(Expected("192.168.1.1", "192.168.1.2"))));
        Assert.Empty(Compare(Expected(), Written(Expected())));
    }

    [Fact]
    public void AMissingElement_IsAMissingRule_AndAMissingNoEndpointElement_AMissingReject()
    {
        var expected = Expected("192.168.1.1");
        var rules = Written(expected);
        rules.Maps[(Family, "service-ips")].Clear();
        var f = Assert.Single(Compare(expected, rules));
        Assert.Equal(("missing-rule", Severity.Error, "tool-a/web:http 10.96.0.10:80/tcp"), Brief(f));
        Assert.Equal($"no service-ips element sends cluster IP 10.96.0.10:80/tcp of tool-a/web:http to its chain (want: 10.96.0.10 . tcp . 80 : goto service-{Base})", f.Message);

        var none = Expected();
        var noReject = Written(none);
        noReject.Maps[(Family, "no-endpoint-nodeports")].Clear();
        Assert.Equal([("missing-reject", Severity.Warning, "tool-a/web:http *:30080/tcp")], Compare(none, noReject).Select(Brief));
    }

    [Fact]
    public void AnElementToAnotherChain_IsAWrongTarget_AndAnElementNoServiceHas_IsStale()
    {
        var expected = Expected("192.168.1.1");
        var rules = Written(expected);
        rules.Maps[(Family, "service-ips")]["10.96.0.10 . tcp . 80"] = new("10.96.0.10 . tcp . 80", "goto service-other", null);
        rules.Maps[(Family, "service-ips")]["10.96.0.99 . udp . 53"] = new("10.96.0.99 . udp . 53", "goto service-gone", "tool-a/dns:dns");
        var findings = Compare(expected, rules);
        Assert.Equal([("wrong-target", Severity.Error, "tool-a/web:http 10.96.0.10:80/tcp"), ("stale-rule", Severity.Error, "10.96.0.99:53/udp")], findings.Select(Brief));
        Assert.Equal("service-ips has 10.96.0.99 . udp . 53 : goto service-gone (tool-a/dns:dns), but no Service has this destination", findings[1].Message);
    }

    [Fact]
    public void ARejectLeftForAPortWithEndpoints_IsStale_NamedByItsServicePort()
    {
        var expected = Expected("192.168.1.1");
        var rules = Written(expected);
        rules.Maps[(Family, "no-endpoint-services")]["10.96.0.10 . tcp . 80"] = new("10.96.0.10 . tcp . 80", "goto reject-chain", null);
        var f = Assert.Single(Compare(expected, rules));
        Assert.Equal(("stale-rule", Severity.Error, "tool-a/web:http 10.96.0.10:80/tcp"), Brief(f));
        Assert.Equal("no-endpoint-services still sends cluster IP 10.96.0.10:80/tcp of tool-a/web:http to \"goto reject-chain\", but it has usable endpoints", f.Message);
    }

    [Fact]
    public void ANumgenOverOtherEndpoints_OrADnatElsewhere_IsAWrongBackend()
    {
        var expected = Expected("192.168.1.1");
        var rules = Written(expected);
        var service = rules.Chains[(Family, $"service-{Base}")];
        service.NumgenMod = 2;
        var f = Assert.Single(Compare(expected, rules));
        Assert.Equal(("wrong-backend", Severity.Error, "tool-a/web:http"), Brief(f));
        Assert.Contains("(numgen mod 2)", f.Message, StringComparison.Ordinal);

        service.NumgenMod = 1;
        var endpoint = Assert.Single(expected.Dnats).Key;
        rules.Chains[(Family, endpoint)].Dnats[0] = "192.168.9.9:8080";
        f = Assert.Single(Compare(expected, rules));
        Assert.Equal($"{endpoint} DNATs to [192.168.9.9:8080], not to its endpoint 192.168.1.1:8080", f.Message);
    }

    [Fact]
    public void AChainOrAffinitySetNoServiceExplains_IsAStaleChain()
    {
        var expected = Expected("192.168.1.1");
        var rules = Written(expected);
        var gone = "service-" + NftNames.ServicePortBase("tool-a", "gone", "tcp", "http");
        Chain(rules, gone);
        var affinity = NftNames.AffinityPrefix + NftNames.EndpointBase("tool-a", "gone", "tcp", "http", "192.168.1.9", 8080);
        rules.Sets[(Family, affinity)] = [];
        Assert.Equal([("stale-chain", Severity.Warning, gone), ("stale-chain", Severity.Warning, affinity)], Compare(expected, rules).Select(Brief));
    }

    [Fact]
    public void TheClusterIpsSet_MustHoldExactlyTheClusterIPs()
    {
        var expected = Expected("192.168.1.1");
        var rules = Written(expected);
        rules.Sets[(Family, NftLayout.ClusterIps)] = ["10.96.0.99"];
        Assert.Equal([("missing-rule", Severity.Warning, "10.96.0.10"), ("stale-rule", Severity.Warning, "10.96.0.99")], Compare(expected, rules).Select(Brief));
    }

    [Fact]
    public void ATableWithoutKubeProxysLayout_IsOneUnknownLayout_AndAMissingMapAMissingObject()
    {
        var expected = Expected("192.168.1.1");
        var f = Assert.Single(Compare(expected, new NftRuleset()));
        Assert.Equal(("unknown-layout", Severity.Error, "table ip kube-proxy"), Brief(f));

        var rules = Written(expected);
        rules.Maps.Remove((Family, "service-ips"));
        f = Assert.Single(Compare(expected, rules));
        Assert.Equal(("missing-object", Severity.Error, "map ip kube-proxy service-ips"), Brief(f));
    }
}
