using System.Text.Json.Nodes;
using k8s;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The demo's simulated worker (demo/cluster.json, demo/kube-proxy.rules): the Services as kubectl prints them and the
/// rules kube-proxy would have written for them, but for one Service. The files are made from the definition below
/// (TFA_WRITE_DEMO=1 rewrites them) and audited here, so the demo shows exactly one missing-rule.
/// </summary>
public sealed class DemoDataTests
{
    public const string MissingService = "tool-b/api:http";

    private static readonly KubeProxyRules.Svc[] Services =
    [
        new("default", "kubernetes", "10.96.0.1", "https", 443, "TCP", ["172.16.0.10:6443"]),
        new("kube-system", "kube-dns", "10.96.0.10", "dns", 53, "UDP", ["192.168.0.53:53", "192.168.0.54:53"]),
        new("tool-a", "web", "10.96.20.1", "http", 8000, "TCP", ["192.168.2.10:8000", "192.168.2.11:8000"]),
        new("tool-b", "api", "10.96.30.5", "http", 8080, "TCP", ["192.168.3.20:8080"]),
    ];

    private static string Demo(string file) => Path.Combine(Run.RepoRoot, "demo", file);

    private static string ClusterJson()
    {
        var items = new JsonArray();
        void Add(object o, string kind, string apiVersion)
        {
            var node = JsonNode.Parse(KubernetesJson.Serialize(o))!.AsObject();
            node["kind"] = kind;
            node["apiVersion"] = apiVersion;
            items.Add(node);
        }

        foreach (var ns in new[] { "default", "kube-system", "tool-a", "tool-b" })
        {
            Add(FakeKubeApiServer.Namespace(ns, ns.StartsWith("tool-", StringComparison.Ordinal)
                ? new Dictionary<string, string> { ["toolforge.org/run-as-user"] = ns == "tool-a" ? "52000" : "52001" } : null), "Namespace", "v1");
        }

        foreach (var s in Services)
        {
            Add(FakeKubeApiServer.Service(s.Namespace, s.Name, s.ClusterIP, (s.PortName, s.Port, s.Protocol)), "Service", "v1");
        }

        foreach (var s in Services)
        {
            var port = int.Parse(s.Endpoints[0][(s.Endpoints[0].LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            Add(FakeKubeApiServer.Slice(s.Namespace, s.Name, s.Endpoints.Select(e => e[..e.LastIndexOf(':')]).ToArray(), (s.PortName, port, s.Protocol)),
                "EndpointSlice", "discovery.k8s.io/v1");
        }

        return new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = items }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    // kube-proxy "forgot" tool-b/api: every rule but its own.
    private static string Rules() => KubeProxyRules.Generate(Services.Where(s => $"{s.Namespace}/{s.Name}:{s.PortName}" != MissingService));

    [Fact]
    public async Task DemoFiles_AreWhatTheDefinitionMakes()
    {
        if (Environment.GetEnvironmentVariable("TFA_WRITE_DEMO") == "1")
        {
            await File.WriteAllTextAsync(Demo("cluster.json"), ClusterJson());
            await File.WriteAllTextAsync(Demo("kube-proxy.rules"), Rules());
        }

        Assert.Equal(ClusterJson(), await File.ReadAllTextAsync(Demo("cluster.json")));
        Assert.Equal(Rules(), await File.ReadAllTextAsync(Demo("kube-proxy.rules")));
    }

    [Fact]
    public async Task DemoCluster_AuditsToExactlyOneMissingRule()
    {
        var cluster = AuditCommand.ReadCluster([Demo("cluster.json")], []);
        Assert.Equal(4, cluster.Services.Count);
        // iptables-save prints what iptables-restore loaded; the audit reads the same text.
        var findings = NatAudit.Run(cluster, IptablesDump.Parse(await File.ReadAllTextAsync(Demo("kube-proxy.rules"))), new NatAuditOptions(true, "demo-worker-1.toolforge.test"));
        var f = Assert.Single(findings);
        Assert.Equal("missing-rule", f.Kind);
        Assert.StartsWith(MissingService, f.Subject, StringComparison.Ordinal);
    }
}
