using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// `toolforge-node-agent check --only kube-proxy.*` reports what its own run finds: the daemon's confirmation over two
/// audits in a row must not turn a one-shot run on a broken node into `ok clean`.
/// </summary>
public sealed class CheckKubeProxyTests
{
    private static JsonObject Config(TempDir dir, string node, string cluster, JsonObject kubeProxy, string section, JsonObject audit) => new()
    {
        ["Log"] = new JsonObject { ["Console"] = "plain" },
        ["Metrics"] = new JsonObject { ["Port"] = 0 },
        ["NodeAgent"] = new JsonObject
        {
            ["NodeName"] = node,
            ["StateDirectory"] = dir["state"],
            ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
            ["Kubernetes"] = new JsonObject { ["Source"] = "file", ["File"] = cluster },
            ["KubeProxy"] = kubeProxy,
            [section] = audit,
        },
    };

    private static JsonArray Args(IEnumerable<string> args) => new(args.Select(a => (JsonNode)a).ToArray());

    [Fact]
    public async Task CheckIptables_OnTheDemoRules_ExitsOneWithTheMissingRuleTheOfflineAuditReports()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RestoreAsync(await File.ReadAllTextAsync(Path.Combine(Run.RepoRoot, "demo", "kube-proxy.rules")));
        using var dir = new TempDir();
        var cluster = Path.Combine(Run.RepoRoot, "demo", "cluster.json");
        const string node = "demo-worker-1.toolforge.test";

        var offline = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", cluster, "--iptables-save", Path.Combine(Run.RepoRoot, "demo", "kube-proxy.rules"),
            "--node", node, "-o", "json"]);
        Assert.True(offline.ExitCode == 1, offline.ToString());
        var expected = Assert.Single(JsonNode.Parse(offline.Stdout)!["findings"]!.AsArray())!;

        await File.WriteAllTextAsync(dir["node-agent.json"], Config(dir, node, cluster, new JsonObject { ["Mode"] = "iptables" }, "Iptables",
            new JsonObject { ["Command"] = "ip", ["Arguments"] = Args(ns.SaveCommand) }).ToJsonString());
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", dir["node-agent.json"], "--only", "kube-proxy.iptables", "-o", "json"]);
        Assert.True(r.ExitCode == 1, r.ToString());
        var result = JsonNode.Parse(r.Stdout)!;
        var check = result["checks"]!.AsArray().Single()!;
        Assert.Equal("failing", (string?)check["state"]);
        Assert.Equal("1 missing-rule", (string?)check["message"]);
        var f = Assert.Single(result["findings"]!.AsArray())!;
        Assert.Equal(((string?)expected["kind"], (string?)expected["subject"]), ((string?)f["kind"], (string?)f["subject"]));
        Assert.Equal("missing-rule", (string?)f["kind"]);
        Assert.Equal("tool-b/api:http 10.96.30.5:8080/tcp", (string?)f["subject"]);
    }

    [Fact]
    public async Task CheckNftables_WithAnElementTakenOut_ExitsOneWithTheMissingRuleTheOfflineAuditReports()
    {
        Peer.Require("nft", "nftables");
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RunAsync("nft", "-f", Path.Combine(NftReferenceData.Dir, "overall-rules.nft"));
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["cluster.json"], NftReferenceData.KubectlJson("overall-rules"));
        // nft inside the namespace, the README's `ip netns exec` form: the Arguments in the file replace the default list.
        await File.WriteAllTextAsync(dir["node-agent.json"], Config(dir, NftReferenceData.Node, dir["cluster.json"], new JsonObject { ["Mode"] = "nftables" }, "Nftables",
            new JsonObject
            {
                ["Command"] = "ip", ["Arguments"] = new JsonArray("netns", "exec", ns.Name, "nft", "-j", "list", "table", "ip", "kube-proxy"),
                ["Ipv6Arguments"] = new JsonArray(), ["ForbidNodePorts"] = false,
            }).ToJsonString());
        var clean = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", dir["node-agent.json"], "--only", "kube-proxy.nftables"]);
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.Contains("clean:", clean.Stdout, StringComparison.Ordinal);

        await ns.RunAsync("nft", "delete", "element", "ip", "kube-proxy", "service-ips", "{ 172.30.0.44 . tcp . 80 }");
        var listed = await ns.RunAsync("nft", "-j", "list", "table", "ip", "kube-proxy");
        await File.WriteAllTextAsync(dir["kernel.json"], listed.Stdout);

        // The daemon's configuration (ForbidNodePorts off) given to the offline audit: the same judgement.
        var offline = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "nftables", "--config", dir["node-agent.json"], "--services", dir["cluster.json"], "--nft-json", dir["kernel.json"],
            "-o", "json"]);
        Assert.True(offline.ExitCode == 1, offline.ToString());
        var expected = Assert.Single(JsonNode.Parse(offline.Stdout)!["findings"]!.AsArray())!;

        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--config", dir["node-agent.json"], "--only", "kube-proxy.nftables", "-o", "json"]);
        Assert.True(r.ExitCode == 1, r.ToString());
        var result = JsonNode.Parse(r.Stdout)!;
        Assert.Equal("failing", (string?)result["checks"]!.AsArray().Single()!["state"]);
        var f = Assert.Single(result["findings"]!.AsArray())!;
        Assert.Equal(("missing-rule", "ns4/svc4:p80 172.30.0.44:80/tcp"), ((string?)f["kind"], (string?)f["subject"]));
        Assert.Equal((string?)expected["subject"], (string?)f["subject"]);
    }

    [Fact]
    public async Task CheckHelp_SaysHowTheKubeProxyAuditsConfirmInOneRun()
    {
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["check", "--help"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("repeated 2 s later", r.Stdout, StringComparison.Ordinal);
    }
}
