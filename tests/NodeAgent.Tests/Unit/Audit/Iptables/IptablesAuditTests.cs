using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>The NAT audit on real kube-proxy dumps and the Services that produced them.</summary>
public sealed partial class IptablesAuditTests
{
    [Fact]
    public void ChainNames_MatchKnownKubeProxyNames()
    {
        var rows = File.ReadAllLines(Path.Combine(ReferenceData.Dir, "chain-hash-vectors.tsv")).Where(l => l.Length > 0 && l[0] != '#').ToList();
        Assert.True(rows.Count >= 15);
        foreach (var cols in rows.Select(r => r.Split('\t')))
        {
            var (spn, protocol, endpoint, chain) = (cols[0], cols[1], cols[2], cols[3]);
            var prefix = chain[..(chain.IndexOf('-', 5) + 1)];
            var hash = KubeProxyNames.Hash(spn, protocol, endpoint == "-" ? null : endpoint);
            Assert.Equal(chain, prefix + hash);
        }

        Assert.Equal("KUBE-SVC-NPX46M4PTMTKRN6Y", KubeProxyNames.ServiceChain("default/kubernetes:https", "tcp"));
    }

    [Fact]
    public void PortHash_WithoutAString_IsKubeProxysHash_ForNamedAndUnnamedPorts()
    {
        // The allocation-free hash the audit uses agrees with the reference-checked one, including the ":" variant.
        var named = KubeProxyNames.PortHashes("default", "kubernetes", new ServicePortSpec("https", 443, "TCP", 0));
        Assert.Equal("NPX46M4PTMTKRN6Y", named.Hash.ToString());
        Assert.Null(named.Old);
        var unnamed = KubeProxyNames.PortHashes("tool-a", "web", new ServicePortSpec(string.Empty, 80, "UDP", 0));
        Assert.Equal(KubeProxyNames.Hash("tool-a/web", "udp"), unnamed.Hash.ToString());
        Assert.Equal(KubeProxyNames.Hash("tool-a/web:", "udp"), unnamed.Old?.ToString());
    }

    [Fact]
    public void AnIp6tablesDump_AndANonAsciiComment_AreReadAsTheyAre()
    {
        var dump = IptablesDump.Parse("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-ABCDEFGHIJKLMNOP - [0:0]\n"
            + "-A KUBE-SERVICES -d fd00:10:96::a/128 -p tcp -m comment --comment \"tool-ü/web:http — cluster IP\" -m tcp --dport 80 -j KUBE-SVC-ABCDEFGHIJKLMNOP\n"
            + "-A KUBE-SERVICES -d 10.96.0.9/32 -p tcp -m tcp --dport 30000:30010 -j KUBE-SVC-ABCDEFGHIJKLMNOP\nCOMMIT\n");
        var v6 = dump.Rules[0];
        Assert.Equal(("fd00:10:96::a", "80", "tool-ü/web:http — cluster IP"), (v6.Destination, v6.DestinationPort, v6.Comment));
        Assert.Equal("30000:30010", dump.Rules[1].DestinationPort);
        Assert.True(dump.HasChain("nat", "KUBE-SVC-ABCDEFGHIJKLMNOP"));
        Assert.False(dump.HasChain("filter", "KUBE-SVC-ABCDEFGHIJKLMNOP"));

        // No Service: the IPv6 rule is stale and named by its address; a port range is no single destination to judge.
        var f = Assert.Single(NatAudit.Run(ClusterModel.Empty, dump, new NatAuditOptions()));
        Assert.Equal(("stale-rule", "fd00:10:96::a:80/tcp"), (f.Kind, f.Subject));
        Assert.Contains("tool-ü/web:http — cluster IP", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACommandsOutput_ReadAsBytes_GrowsPastItsSizeHint_AndLosesNothing()
    {
        using var dir = new TempDir();
        var lines = Enumerable.Range(0, 20_000).Select(i => $"-A KUBE-SEP-{i:D16} -p tcp -m tcp -j DNAT --to-destination 10.0.{i / 256 % 256}.{i % 256}:80").ToList();
        await File.WriteAllLinesAsync(dir["out.txt"], lines);
        var expected = await File.ReadAllBytesAsync(dir["out.txt"]);
        Assert.True(expected.Length > 4 * 64 * 1024);
        var (buffer, length) = await Checks.ProcessRunner.RunBytesAsync("cat", [dir["out.txt"]], TimeSpan.FromSeconds(10), 0, CancellationToken.None);
        Assert.Equal(expected, buffer[..length]);
    }

    [Theory]
    [MemberData(nameof(Dumps))]
    public void ReferenceDump_WithItsServices_IsClean(string name)
    {
        var rows = ReferenceData.Rows(name);
        foreach (var row in rows)
        {
            var spn = KubeProxyNames.ServicePortName(row.Service.Split('/')[0], row.Service.Split('/')[1], row.PortName);
            Assert.True(row.SvcChain == KubeProxyNames.ServiceChain(spn, row.Protocol) || row.SvcChain == KubeProxyNames.ServiceChain(spn + ":", row.Protocol), row.SvcChain);
        }

        var findings = NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(rows)]), IptablesDump.Parse(ReferenceData.Dump(name)), new NatAuditOptions());
        Assert.True(findings.Count == 0, string.Join("\n", findings.Select(f => $"{f.Kind} {f.Subject}: {f.Message}")));
    }

    public static TheoryData<string> Dumps => new(ReferenceData.Dumps);

    [Theory]
    [InlineData("overall-rules", "ns1/svc1:p80 cluster IP")]
    [InlineData("overall-rules", "ns2/svc2:p80 loadbalancer IP")]
    [InlineData("overall-rules-v128", "ns4/svc4:p80 external IP")]
    [InlineData("sync-repeated-initial", "ns2/svc2:p8080 cluster IP")]
    [InlineData("real-kubeadm-v1.11-docker-2018", "default/kubernetes:https cluster IP")]
    [InlineData("real-k3s-counters-2022", "default/kubernetes:https cluster IP")]
    public void ReferenceDump_WithOneRuleTakenOut_ReportsExactlyThatRule(string name, string comment)
    {
        var lines = ReferenceData.Dump(name).Split('\n').ToList();
        var victim = lines.FindIndex(l => l.Contains("-A KUBE-SERVICES", StringComparison.Ordinal)
            && l.Contains($"\"{comment}\"", StringComparison.Ordinal) && l.Contains("-j KUBE-", StringComparison.Ordinal) && !l.Contains("KUBE-MARK-MASQ", StringComparison.Ordinal));
        Assert.True(victim >= 0, $"no rule with comment {comment} in {name}");
        lines.RemoveAt(victim);
        var findings = NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(ReferenceData.Rows(name))]), IptablesDump.Parse(string.Join('\n', lines)), new NatAuditOptions());
        var finding = Assert.Single(findings);
        Assert.Equal("missing-rule", finding.Kind);
        Assert.StartsWith(comment.Split(' ')[0], finding.Subject, StringComparison.Ordinal);
    }

    [Fact]
    public void ReferenceDump_RejectTakenOut_IsMissingReject()
    {
        var dump = ReferenceData.Dump("real-k3s-counters-2022").Split('\n').Where(l => !l.Contains("kube-system/metrics-server:https has no endpoints", StringComparison.Ordinal));
        var findings = NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(ReferenceData.Rows("real-k3s-counters-2022"))]), IptablesDump.Parse(string.Join('\n', dump)), new NatAuditOptions());
        var f = Assert.Single(findings);
        Assert.Equal("missing-reject", f.Kind);
        Assert.Equal("kube-system/metrics-server:https 10.43.40.11:443/tcp", f.Subject);
    }

    [Fact]
    public void ServiceDeleted_ItsRulesAreStale_AndWrongTargetIsNamed()
    {
        var rows = ReferenceData.Rows("sync-repeated-initial");
        var dump = ReferenceData.Dump("sync-repeated-initial");
        // ns2/svc2 deleted from the API but its rules remain.
        var findings = NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(rows.Where(r => r.Service != "ns2/svc2"))]), IptablesDump.Parse(dump), new NatAuditOptions());
        var stale = Assert.Single(findings);
        Assert.Equal("stale-rule", stale.Kind);
        Assert.Equal("172.30.0.42:8080/tcp", stale.Subject);

        // svc1's cluster IP rule pointing at svc2's chain.
        var swapped = dump.Replace("\"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O",
            "\"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-2VJB64SDSIJUP5T6", StringComparison.Ordinal);
        Assert.NotEqual(dump, swapped);
        var wrong = Assert.Single(NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(rows)]), IptablesDump.Parse(swapped), new NatAuditOptions()));
        Assert.Equal("wrong-target", wrong.Kind);
        Assert.Equal("KUBE-SVC-2VJB64SDSIJUP5T6", wrong.Details["target"]);
    }

    [Fact]
    public void NodePorts_AreReportedWhenPolicyForbidsThem_HeadlessExpectsNothing()
    {
        var rows = ReferenceData.Rows("overall-rules");
        var json = ReferenceData.KubectlJson(rows);
        var cluster = ClusterModel.FromKubectlJson([json, """{"kind":"Service","apiVersion":"v1","metadata":{"name":"db","namespace":"tool-x"},"spec":{"clusterIP":"None","ports":[{"port":3306}]}}"""]);
        var findings = NatAudit.Run(cluster, IptablesDump.Parse(ReferenceData.Dump("overall-rules")), new NatAuditOptions(ForbidNodePorts: true));
        Assert.Equal(["ns2/svc2:p80", "ns3/svc3:p80", "ns5/svc5:p80"], findings.Where(f => f.Kind == "nodeport-forbidden").Select(f => f.Subject).Order(StringComparer.Ordinal));
        Assert.All(findings, f => Assert.Equal("nodeport-forbidden", f.Kind));
    }

    [Fact]
    public void WrongBackend_IsReported()
    {
        var rows = ReferenceData.Rows("sync-repeated-initial");
        var moved = rows.Select(r => r.Service == "ns1/svc1" ? r with { Endpoints = ["10.0.1.9:80"] } : r);
        var f = Assert.Single(NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(moved)]), IptablesDump.Parse(ReferenceData.Dump("sync-repeated-initial")), new NatAuditOptions()));
        Assert.Equal("wrong-backend", f.Kind);
        Assert.Equal("10.0.1.9:80", f.Details["missing"]);
        Assert.Equal("10.0.1.1:80", f.Details["extra"]);
    }

    [Fact]
    public void Rule_IsReadByTokens_QuotedEscapesCountersAndCrlf()
    {
        var dump = IptablesDump.Parse("*nat\r\n:KUBE-SERVICES - [0:0]\r\n[12:720] -A KUBE-SERVICES -m comment --comment \"ns/a \\\"quoted\\\" :p\" -p TCP --dport 443 -d 10.0.0.1/32 -j KUBE-SVC-AAAA\r\n"
            + "-A KUBE-SERVICES ! -d 10.0.0.2/32 -p udp -m udp --dport 53 -j KUBE-MARK-MASQ\r\nCOMMIT\r\n");
        Assert.Equal(2, dump.Rules.Count);
        var r = dump.Rules[0];
        Assert.Equal(("nat", "KUBE-SERVICES", 3), (r.Table, r.Chain, r.Line));
        Assert.Equal("ns/a \"quoted\" :p", r.Comment);
        Assert.Equal(("10.0.0.1", "tcp", "443", "KUBE-SVC-AAAA"), (r.Destination, r.Protocol, r.DestinationPort, r.Jump));
        Assert.StartsWith("-m comment --comment", r.RawText, StringComparison.Ordinal);
        Assert.True(dump.Rules[1].DestinationNegated);
        Assert.Null(dump.Rules[1].Comment);
        Assert.Same(dump.Rules[0].Chain, dump.Rules[1].Chain); // names are shared, not copied per rule
    }

    [Theory]
    [InlineData("*nat\n-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp -m comment --comment \"unterminated -j X\nCOMMIT\n", 2, "unterminated quote")]
    [InlineData("-A KUBE-SERVICES -j X\n", 1, "outside a table")]
    [InlineData("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-X\n", 3, "no COMMIT")]
    [InlineData("*nat\nwhat is this\nCOMMIT\n", 2, "not an iptables-save line")]
    public void BadDump_IsAnErrorNamingTheLine(string dump, int line, string reason)
    {
        var ex = Assert.Throws<IptablesParseException>(() => IptablesDump.Parse(dump));
        Assert.Equal(line, ex.Line);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }
}
