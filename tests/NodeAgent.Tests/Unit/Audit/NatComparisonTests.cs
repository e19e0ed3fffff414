using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>
/// The NAT audit's index and compare steps on small hand-written dumps: one Service port (tool-a/web:http, cluster IP
/// 10.96.0.10:80/tcp) against the rules that should and should not be there.
/// </summary>
public sealed class NatComparisonTests
{
    private const string Spn = "tool-a/web:http";
    private static readonly string SvcChain = KubeProxyNames.ServiceChain(Spn, "tcp");
    private static readonly string OtherChain = KubeProxyNames.ServiceChain("tool-a/api:http", "tcp");
    private const string SepChain = "KUBE-SEP-AAAAAAAAAAAAAAAA";

    private static ClusterModel Web(params string[] endpoints) => new(
        [new ServiceSpec("tool-a", "web", "ClusterIP", "10.96.0.10", [new ServicePortSpec("http", 80, "TCP", 0)], [], [], false, false)],
        endpoints.Length == 0 ? [] : [new EndpointSliceSpec("tool-a", "web", endpoints.Select(a => new EndpointSpec(a, true, true, false, "node-1")).ToList(), [new ServicePortSpec("http", 8080, "TCP", 0)])]);

    private static string Dump(string filter = "", string nat = "") =>
        "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n" + filter + "COMMIT\n"
        + $"*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:{SvcChain} - [0:0]\n:{OtherChain} - [0:0]\n:{SepChain} - [0:0]\n" + nat + "COMMIT\n";

    private static string NatRule(string address, string chain) =>
        $"-A KUBE-SERVICES -d {address}/32 -p tcp -m comment --comment \"{Spn} cluster IP\" -m tcp --dport 80 -j {chain}\n";

    private static string Backend(string target) =>
        $"-A {SvcChain} -m comment --comment \"{Spn} -> {target}\" -j {SepChain}\n-A {SepChain} -p tcp -m comment --comment \"{Spn}\" -m tcp -j DNAT --to-destination {target}\n";

    private const string Reject = "-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"tool-a/web:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\n";

    // expect → index → compare, as NatAudit.Run does.
    private static List<Finding> Compare(ClusterModel cluster, string dumpText)
    {
        var dump = IptablesDump.Parse(dumpText);
        var expected = NatExpectations.Of(cluster, dump.Names, new NatAuditOptions());
        var findings = new List<Finding>();
        NatComparison.Rules(expected.Rules, NatRuleIndex.Of(dump), dump, findings);
        NatComparison.Backends(expected.Backends, ServiceChainIndex.Of(dump), dump.Names, findings);
        return findings;
    }

    private static (string Kind, Severity Severity, string Subject) Brief(Finding f) => (f.Kind, f.Severity, f.Subject);

    [Fact]
    public void TheRulesKubeProxyWrites_AreClean()
    {
        Assert.Empty(Compare(Web("192.168.1.1"), Dump(nat: NatRule("10.96.0.10", SvcChain) + Backend("192.168.1.1:8080"))));
        Assert.Empty(Compare(Web(), Dump(filter: Reject)));
    }

    /// <summary>
    /// internalTrafficPolicy Local with every endpoint on another node: kube-proxy writes no nat rule for the cluster IP
    /// and a filter DROP "has no local endpoints" (proxier.go: internalTrafficFilterTarget = "DROP"), not the REJECT of a
    /// port without endpoints. That is clean; a REJECT instead, or nothing, is the missing block named as a DROP.
    /// </summary>
    [Fact]
    public void InternalTrafficLocal_WithTheEndpointsElsewhere_WantsTheDropKubeProxyWrites()
    {
        var cluster = new ClusterModel(
            [new ServiceSpec("tool-a", "web", "ClusterIP", "10.96.0.10", [new ServicePortSpec("http", 80, "TCP", 0)], [], [], true, false)],
            [new EndpointSliceSpec("tool-a", "web", [new EndpointSpec("192.168.1.1", true, true, false, "node-2")], [new ServicePortSpec("http", 8080, "TCP", 0)])]);
        const string Drop = "-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"tool-a/web:http has no local endpoints\" -m tcp --dport 80 -j DROP\n";
        List<Finding> On(string dumpText)
        {
            var dump = IptablesDump.Parse(dumpText);
            var expected = NatExpectations.Of(cluster, dump.Names, new NatAuditOptions(NodeName: "node-1"));
            var findings = new List<Finding>();
            NatComparison.Rules(expected.Rules, NatRuleIndex.Of(dump), dump, findings);
            return findings;
        }

        Assert.Empty(On(Dump(filter: Drop)));
        foreach (var wrong in new[] { Dump(filter: Reject), Dump() })
        {
            var f = Assert.Single(On(wrong), x => x.Kind == "missing-reject");
            Assert.Contains("has no local endpoints (internalTrafficPolicy Local) but no filter DROP for cluster IP 10.96.0.10:80/tcp", f.Message, StringComparison.Ordinal);
        }

        // A nat rule to the service chain there is stale: this node must not send its own pods' traffic elsewhere.
        Assert.Contains(On(Dump(filter: Drop, nat: NatRule("10.96.0.10", SvcChain))), x => x.Kind == "stale-rule");
    }

    [Fact]
    public void NoNatRule_IsAMissingRule_NamingTheChainItShouldJumpTo()
    {
        var f = Assert.Single(Compare(Web("192.168.1.1"), Dump(nat: Backend("192.168.1.1:8080"))));
        Assert.Equal(("missing-rule", Severity.Error, $"{Spn} 10.96.0.10:80/tcp"), Brief(f));
        Assert.Equal($"no nat rule sends cluster IP 10.96.0.10:80/tcp of {Spn} to {SvcChain}", f.Message);
        Assert.Equal(SvcChain, f.Details["expected_chain"]);
    }

    [Fact]
    public void ANatRuleToAnotherServicesChain_IsAWrongTarget()
    {
        var f = Assert.Single(Compare(Web("192.168.1.1"), Dump(nat: NatRule("10.96.0.10", OtherChain) + Backend("192.168.1.1:8080"))));
        Assert.Equal(("wrong-target", Severity.Error, $"{Spn} 10.96.0.10:80/tcp"), Brief(f));
        Assert.Equal(OtherChain, f.Details["target"]);
    }

    [Fact]
    public void ARejectForAPortWithEndpoints_IsAStaleRule()
    {
        var f = Assert.Single(Compare(Web("192.168.1.1"), Dump(filter: Reject, nat: NatRule("10.96.0.10", SvcChain) + Backend("192.168.1.1:8080"))));
        Assert.Equal(("stale-rule", Severity.Error, $"{Spn} 10.96.0.10:80/tcp"), Brief(f));
        Assert.Equal($"a filter REJECT refuses cluster IP 10.96.0.10:80/tcp of {Spn}, which has endpoints", f.Message);
    }

    [Fact]
    public void APortWithoutEndpoints_WantsAReject_AndNoNatRule()
    {
        var findings = Compare(Web(), Dump(nat: NatRule("10.96.0.10", SvcChain)));
        Assert.Equal(
            [("missing-reject", Severity.Warning, $"{Spn} 10.96.0.10:80/tcp"), ("stale-rule", Severity.Warning, $"{Spn} 10.96.0.10:80/tcp")],
            findings.Select(Brief));
    }

    [Fact]
    public void RulesForADestinationNoServiceHas_AreStale_NamedByTheirDestination()
    {
        var findings = Compare(ClusterModel.Empty, Dump(filter: Reject, nat: NatRule("10.96.0.10", SvcChain)));
        Assert.Equal([("stale-rule", Severity.Error, "10.96.0.10:80/tcp"), ("stale-rule", Severity.Warning, "10.96.0.10:80/tcp")], findings.Select(Brief));
        Assert.Equal($"nat rule for 10.96.0.10:80/tcp ({Spn} cluster IP) jumps to {SvcChain}, but no Service has this destination", findings[0].Message);
    }

    [Fact]
    public void AServiceChainSendingElsewhere_IsAWrongBackend_WithWhatIsMissingAndExtra()
    {
        var f = Assert.Single(Compare(Web("192.168.1.1"), Dump(nat: NatRule("10.96.0.10", SvcChain) + Backend("192.168.9.9:8080"))));
        Assert.Equal(("wrong-backend", Severity.Error, Spn), Brief(f));
        Assert.Equal($"{SvcChain} of {Spn} sends to [192.168.9.9:8080] but the ready endpoints are [192.168.1.1:8080]", f.Message);
        Assert.Equal(("192.168.1.1:8080", "192.168.9.9:8080"), (f.Details["missing"], f.Details["extra"]));
    }

    [Fact]
    public void AnEndpointChainWithoutItsDnat_IsNamedUnresolved()
    {
        var nat = NatRule("10.96.0.10", SvcChain) + $"-A {SvcChain} -m comment --comment \"{Spn} -> 192.168.1.1:8080\" -j {SepChain}\n";
        var f = Assert.Single(Compare(Web("192.168.1.1"), Dump(nat: nat)));
        Assert.Equal("wrong-backend", f.Kind);
        Assert.Equal("?" + SepChain, f.Details["extra"]);
    }
}
