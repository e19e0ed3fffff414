using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class IptablesAuditTests
{
    [Fact]
    public async Task OfflineCommand_ExitCodes_CleanFindingsBadInput()
    {
        using var dir = new TempDir();
        var rows = ReferenceData.Rows("real-kubeadm-v1.11-docker-2018");
        await File.WriteAllTextAsync(dir["all.json"], ReferenceData.KubectlJson(rows));
        await File.WriteAllTextAsync(dir["dump.txt"], ReferenceData.Dump("real-kubeadm-v1.11-docker-2018"));
        var clean = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", dir["all.json"], "--iptables-save", dir["dump.txt"]]);
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.Contains("clean: 2 services", clean.Stdout, StringComparison.Ordinal);

        await File.WriteAllTextAsync(dir["fewer.json"], ReferenceData.KubectlJson(rows.Where(r => r.Service != "default/kubernetes")));
        var dirty = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", dir["fewer.json"], "--iptables-save", dir["dump.txt"], "-o", "json"]);
        Assert.Equal(1, dirty.ExitCode);
        var findings = System.Text.Json.Nodes.JsonNode.Parse(dirty.Stdout)!["findings"]!.AsArray();
        Assert.Equal("stale-rule", (string?)Assert.Single(findings)!["kind"]);

        await File.WriteAllTextAsync(dir["bad.txt"], "*nat\n-A KUBE-SERVICES -j\nCOMMIT\n");
        var bad = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", dir["all.json"], "--iptables-save", dir["bad.txt"]]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("iptables-save line 2: option -j has no value", bad.Stderr, StringComparison.Ordinal);
    }
}
