using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The offline audits judge as the daemon does: with its defaults (ForbidNodePorts on), or with its configuration file
/// when --config is given; a flag on the command line wins over the file. The same node must not be clean offline and
/// `nodeport-forbidden` live.
/// </summary>
public sealed class OfflineAuditSettingsTests
{
    private const string Program = "toolforge-node-agent";

    private static List<(string Kind, string Subject)> Findings(ProcessResult r, int exit)
    {
        Assert.True(r.ExitCode == exit, r.ToString());
        return JsonNode.Parse(r.Stdout)!["findings"]!.AsArray().Select(f => ((string)f!["kind"]!, (string)f["subject"]!)).Order().ToList();
    }

    [Fact]
    public async Task OfflineAudit_WithNoFlags_FindsWhatTheDaemonWithItsDefaultsFinds_OnTheSameNftRuleset()
    {
        Peer.Require("nft", "nftables");
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RunAsync("nft", "-f", Path.Combine(NftReferenceData.Dir, "overall-rules.nft"));
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["cluster.json"], NftReferenceData.KubectlJson("overall-rules"));
        await File.WriteAllTextAsync(dir["kernel.json"], (await ns.RunAsync("nft", "-j", "list", "table", "ip", "kube-proxy")).Stdout);
        // The daemon's wiring (`check`) with nothing about the audit's policy in its configuration: its defaults.
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["NodeAgent"] = new JsonObject
            {
                ["NodeName"] = NftReferenceData.Node,
                ["StateDirectory"] = dir["state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Kubernetes"] = new JsonObject { ["Source"] = "file", ["File"] = dir["cluster.json"] },
                ["KubeProxy"] = new JsonObject { ["Mode"] = "nftables" },
                ["Nftables"] = new JsonObject { ["Command"] = "ip", ["Arguments"] = new JsonArray("netns", "exec", ns.Name, "nft", "-j", "list", "table", "ip", "kube-proxy"), ["Ipv6Arguments"] = new JsonArray() },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
        var live = Findings(await Run.DotnetToolAsync(Program, ["check", "--config", dir["node-agent.json"], "--only", "kube-proxy.nftables", "-o", "json"]), 1);
        Assert.Equal(["ns2/svc2:p80", "ns3/svc3:p80", "ns5/svc5:p80"], live.Where(f => f.Kind == "nodeport-forbidden").Select(f => f.Subject).Order(StringComparer.Ordinal));

        var offline = Findings(await Run.DotnetToolAsync(Program,
            ["audit", "nftables", "--services", dir["cluster.json"], "--nft-json", dir["kernel.json"], "--node", NftReferenceData.Node, "-o", "json"]), 1);
        Assert.Equal(live, offline);

        // And given the daemon's own file, the same again.
        var withConfig = Findings(await Run.DotnetToolAsync(Program,
            ["audit", "nftables", "--config", dir["node-agent.json"], "--services", dir["cluster.json"], "--nft-json", dir["kernel.json"], "-o", "json"]), 1);
        Assert.Equal(live, withConfig);
    }

    [Theory]
    [InlineData("nftables", "Nftables")]
    [InlineData("iptables", "Iptables")]
    public async Task OfflineAudit_TakesForbidNodePortsFromConfig_AndTheFlagWins(string audit, string section)
    {
        using var dir = new TempDir();
        string[] inputs;
        if (audit == "nftables")
        {
            await File.WriteAllTextAsync(dir["cluster.json"], NftReferenceData.KubectlJson("overall-rules"));
            inputs = ["--services", dir["cluster.json"], "--nft-json", Path.Combine(NftReferenceData.Dir, "overall-rules.kernel.json"), "--node", NftReferenceData.Node];
        }
        else
        {
            await File.WriteAllTextAsync(dir["cluster.json"], ReferenceData.KubectlJson(ReferenceData.Rows("overall-rules")));
            await File.WriteAllTextAsync(dir["dump.txt"], ReferenceData.Dump("overall-rules"));
            inputs = ["--services", dir["cluster.json"], "--iptables-save", dir["dump.txt"]];
        }

        await File.WriteAllTextAsync(dir["off.json"], new JsonObject { ["NodeAgent"] = new JsonObject { [section] = new JsonObject { ["ForbidNodePorts"] = false } } }.ToJsonString());
        await File.WriteAllTextAsync(dir["on.json"], new JsonObject { ["NodeAgent"] = new JsonObject { [section] = new JsonObject { ["ForbidNodePorts"] = true } } }.ToJsonString());
        await File.WriteAllTextAsync(dir["other.json"], new JsonObject { ["NodeAgent"] = new JsonObject { [section == "Iptables" ? "Nftables" : "Iptables"] = new JsonObject { ["ForbidNodePorts"] = false } } }.ToJsonString());
        string[] NodePorts(List<(string Kind, string Subject)> f) => [.. f.Where(x => x.Kind == "nodeport-forbidden").Select(x => x.Subject).Order(StringComparer.Ordinal)];
        string[] all = ["ns2/svc2:p80", "ns3/svc3:p80", "ns5/svc5:p80"];

        async Task<ProcessResult> Audit(params string[] more) => await Run.DotnetToolAsync(Program, ["audit", audit, .. inputs, "-o", "json", .. more]);

        Assert.Equal(all, NodePorts(Findings(await Audit(), 1)));                                         // the daemon's default
        Assert.Empty(NodePorts(Findings(await Audit("--config", dir["off.json"]), 0)));                   // the file says off
        Assert.Equal(all, NodePorts(Findings(await Audit("--config", dir["on.json"]), 1)));
        Assert.Equal(all, NodePorts(Findings(await Audit("--config", dir["other.json"]), 1)));            // the other audit's key
        Assert.Equal(all, NodePorts(Findings(await Audit("--config", dir["off.json"], "--forbid-nodeports"), 1))); // the flag wins
        Assert.Empty(NodePorts(Findings(await Audit("--config", dir["on.json"], "--forbid-nodeports", "false"), 0)));
        Assert.Empty(NodePorts(Findings(await Audit("--forbid-nodeports", "false"), 0)));
    }

    [Fact]
    public async Task OfflineAudit_WithAConfigTheDaemonWouldRefuse_ExitsSeventyEightNamingTheKey()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["cluster.json"], NftReferenceData.KubectlJson("overall-rules"));
        string[] inputs = ["audit", "nftables", "--services", dir["cluster.json"], "--nft-json", Path.Combine(NftReferenceData.Dir, "overall-rules.kernel.json")];

        await File.WriteAllTextAsync(dir["bad.json"], """{"NodeAgent": {"Nftables": {"ForbidNodePorts": "maybe"}}}""");
        var r = await Run.DotnetToolAsync(Program, [.. inputs, "--config", dir["bad.json"]]);
        Assert.Null(ConfigContract.OneConfigLine(Program, r, "NodeAgent:Nftables:ForbidNodePorts: must be true or false (got \"maybe\")"));
        Assert.Empty(r.Stdout);

        await File.WriteAllTextAsync(dir["typo.json"], """{"NodeAgent": {"Nftables": {"ForbidNodePort": false}}}""");
        r = await Run.DotnetToolAsync(Program, [.. inputs, "--config", dir["typo.json"]]);
        Assert.Null(ConfigContract.OneConfigLine(Program, r, "NodeAgent:Nftables:ForbidNodePort: unknown key"));

        r = await Run.DotnetToolAsync(Program, [.. inputs, "--config", dir["absent.json"]]);
        Assert.Null(ConfigContract.OneConfigLine(Program, r, $"--config: file {dir["absent.json"]} does not exist"));
    }
}
