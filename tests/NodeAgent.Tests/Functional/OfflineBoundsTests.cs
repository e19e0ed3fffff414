using System.Diagnostics;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The offline audits' inputs: read with a bound, addresses as kube-proxy reads them, what kube-proxy could not read
/// and missing EndpointSlices refused with one line naming the object or the file.
/// </summary>
public sealed partial class OfflineBoundsTests
{
    private const string Fixture = "real-kubeadm-v1.11-docker-2018";

    private static async Task<ProcessResult> AuditIptablesAsync(TempDir dir, IEnumerable<ReferenceData.Row> rows, string? dump = null)
    {
        await File.WriteAllTextAsync(dir["all.json"], ReferenceData.KubectlJson(rows));
        await File.WriteAllTextAsync(dir["dump.txt"], ReferenceData.Dump(Fixture));
        return await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", dir["all.json"], "--iptables-save", dump ?? dir["dump.txt"]]);
    }

    private static void AssertOneLine(ProcessResult r, string says)
    {
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains(says, r.Stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, r.Stdout);
    }

    [Theory]
    [InlineData("iptables", "--iptables-save")]
    [InlineData("iptables", "--services")]
    [InlineData("nftables", "--nft-json")]
    [InlineData("nftables", "--endpointslices")]
    public async Task DevZeroAsAnyInput_ExitsTwoAtOnce_WithOneLineNamingIt(string audit, string option)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["all.json"], ReferenceData.KubectlJson(ReferenceData.Rows(Fixture)));
        await File.WriteAllTextAsync(dir["dump.txt"], ReferenceData.Dump(Fixture));
        var inputs = new Dictionary<string, string>
        {
            ["--services"] = dir["all.json"],
            [audit == "iptables" ? "--iptables-save" : "--nft-json"] = audit == "iptables" ? dir["dump.txt"] : Path.Combine(NftReferenceData.Dir, "overall-rules.kernel.json"),
        };
        inputs[option] = "/dev/zero";
        var sw = Stopwatch.StartNew();
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", audit, .. inputs.SelectMany(i => new[] { i.Key, i.Value })], TimeSpan.FromSeconds(30));
        AssertOneLine(r, $"{option} /dev/zero: binary data");
        // The whole process (dotnet's own start included) in about a quarter of a second here; the bound is loose.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"{sw.Elapsed}");
    }

    [Fact]
    public async Task ServicesWithoutAnyEndpointSlice_ExitTwoSayingSo_InsteadOfAFloodOfFindings()
    {
        using var dir = new TempDir();
        var json = System.Text.Json.Nodes.JsonNode.Parse(ReferenceData.KubectlJson(ReferenceData.Rows(Fixture)))!;
        var items = json["items"]!.AsArray();
        foreach (var slice in items.Where(i => (string?)i!["kind"] == "EndpointSlice").ToList())
        {
            items.Remove(slice);
        }

        await File.WriteAllTextAsync(dir["svc.json"], json.ToJsonString());
        await File.WriteAllTextAsync(dir["dump.txt"], ReferenceData.Dump(Fixture));
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", dir["svc.json"], "--iptables-save", dir["dump.txt"]]);
        AssertOneLine(r, "2 Service(s) but no EndpointSlice");
    }

    [Fact]
    public async Task LeadingZeroAddresses_AreReadAsKubeProxyReadsThem_AndTheDumpIsClean()
    {
        using var dir = new TempDir();
        var rows = ReferenceData.Rows(Fixture).Select(r => r with
        {
            ClusterIP = r.ClusterIP == "10.96.0.10" ? "10.96.0.010" : "010.096.000.001",
            Endpoints = [.. r.Endpoints.Select(e => e.Replace("192.168.50.101", "192.168.050.101", StringComparison.Ordinal))],
        }).ToList();
        Assert.Contains(rows, r => r.Endpoints.Any(e => e.StartsWith("192.168.050.101:", StringComparison.Ordinal)));
        var clean = await AuditIptablesAsync(dir, rows);
        Assert.True(clean.ExitCode == 0, clean.ToString());

        // The same canonical form for both audits: one helper.
        Assert.Equal("172.30.0.41", IPAddresses.Canonical("172.30.0.041"));
        Assert.Equal("172.30.0.41", Audit.Nftables.NftRuleset.CanonicalIP("172.30.0.041"));
        var findings = NatAudit.Run(ClusterModel.FromKubectlJson([ReferenceData.KubectlJson(rows)]), IptablesDump.Parse(ReferenceData.Dump(Fixture)), new NatAuditOptions());
        Assert.Empty(findings);
    }

    [Theory]
    [InlineData("999.1.2.3", 443, "Service default/kubernetes: spec.clusterIPs \"999.1.2.3\" is not an IP address")]
    [InlineData("10.96.0.1", -1, "Service default/kubernetes: spec.ports[0] (https): port -1 is not 1-65535")]
    [InlineData("10.96.0.1", 70000, "Service default/kubernetes: spec.ports[0] (https): port 70000 is not 1-65535")]
    public async Task AnAddressOrPortKubeProxyCannotRead_ExitsTwoNamingTheObject(string clusterIP, int port, string says)
    {
        using var dir = new TempDir();
        var rows = ReferenceData.Rows(Fixture).Select(r => r.Service == "default/kubernetes" ? r with { ClusterIP = clusterIP, Port = port } : r);
        var r = await AuditIptablesAsync(dir, rows);
        AssertOneLine(r, says);
        Assert.Contains("all.json: items[", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnEndpointAddressKubeProxyCannotRead_ExitsTwoNamingTheSlice()
    {
        using var dir = new TempDir();
        var rows = ReferenceData.Rows(Fixture).Select(r => r with { Endpoints = [.. r.Endpoints.Select(e => e.Replace("192.168.50.101", "192.168.50.301", StringComparison.Ordinal))] });
        var r = await AuditIptablesAsync(dir, rows);
        AssertOneLine(r, "endpoint address \"192.168.50.301\" is not an IP address");
        Assert.Contains("EndpointSlice default/", r.Stderr, StringComparison.Ordinal);
    }
}
