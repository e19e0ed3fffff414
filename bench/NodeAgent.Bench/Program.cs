using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Tests;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Kubernetes;

// Node-agent benchmark:
//  1. 10,000 Services (~60-70k NAT rules) loaded into a network namespace: iptables-save alone (the floor) against the
//     whole audit (iptables-save + parse + compare), and our own work alone; medians of 5.
//  2. The daemon against a fake API server holding those Services, iptables audit every 10 s: RSS and CPU after a
//     minute, and the time from exec to "Application started" (when systemd's READY=1 is sent).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var auditOnly = args.Contains("--audit-only");
args = args.Where(a => a != "--audit-only").ToArray();
var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
var services = KubeProxyRules.Many(n);
await using var ns = await NetNamespace.CreateAsync();
var rules = KubeProxyRules.Generate(services);
await ns.RestoreAsync(rules);
var model = ClusterModel.FromKubectlJson([ToKubectlJson(services)]);

var dumpTimes = new List<double>();
var totalTimes = new List<double>();
var ownTimes = new List<double>();
var parseTimes = new List<double>();
var natRules = 0;
for (var i = 0; i < 6; i++)
{
    var sw = Stopwatch.StartNew();
    var text = (await Run.ProcessAsync("ip", ns.SaveCommand, TimeSpan.FromMinutes(2))).Stdout;
    var dump = sw.Elapsed.TotalMilliseconds;
    var own = Stopwatch.StartNew();
    var parsed = IptablesDump.Parse(text);
    var parseMs = own.Elapsed.TotalMilliseconds;
    var findings = NatAudit.Run(model, parsed, new NatAuditOptions());
    own.Stop();
    sw.Stop();
    if (findings.Count != 0)
    {
        throw new InvalidOperationException($"the generated ruleset should be clean: {findings.Count} findings, first {findings[0].Kind} {findings[0].Subject}");
    }

    natRules = parsed.Rules.Count(r => r.Table == "nat");
    if (i == 0)
    {
        continue; // warm-up
    }

    dumpTimes.Add(dump);
    totalTimes.Add(sw.Elapsed.TotalMilliseconds);
    ownTimes.Add(own.Elapsed.TotalMilliseconds);
    parseTimes.Add(parseMs);
}

double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
Console.WriteLine($"{n} services, {natRules} nat rules, {rules.Length / 1024} KiB dump");
Console.WriteLine($"iptables-save alone: {Median(dumpTimes):0} ms; whole audit: {Median(totalTimes):0} ms = {Median(totalTimes) / Median(dumpTimes):0.00} x the dump; our own work (parse + compare): {Median(ownTimes):0} ms (parse {Median(parseTimes):0} ms)");

if (auditOnly)
{
    return;
}

// The daemon: READY time, RSS and CPU with the audit every 10 s.
await using var api = await FakeKubeApiServer.StartAsync();
api.Put(FakeKubeApiServer.Node("bench-node"));
foreach (var s in services)
{
    api.Put(FakeKubeApiServer.Service(s.Namespace, s.Name, s.ClusterIP, (s.PortName, s.Port, s.Protocol)));
    if (s.Endpoints.Length > 0)
    {
        api.Put(FakeKubeApiServer.Slice(s.Namespace, s.Name, s.Endpoints.Select(e => e.Split(':')[0]).ToArray(), (s.PortName, int.Parse(s.Endpoints[0].Split(':')[1], CultureInfo.InvariantCulture), s.Protocol)));
    }
}

using var dir = new TempDir();
var config = new JsonObject
{
    ["Log"] = new JsonObject { ["Console"] = "plain" },
    ["Metrics"] = new JsonObject { ["Port"] = 0 },
    ["NodeAgent"] = new JsonObject
    {
        ["NodeName"] = "bench-node",
        ["StateDirectory"] = dir["state"],
        ["Kubernetes"] = new JsonObject { ["Kubeconfig"] = api.WriteKubeconfig(dir["kubeconfig"]) },
        ["Iptables"] = new JsonObject { ["Command"] = "ip", ["Arguments"] = new JsonArray(ns.SaveCommand.Select(a => (JsonNode)a).ToArray()), ["Interval"] = "00:00:10" },
        ["Journal"] = new JsonObject { ["Enabled"] = false },
    },
};
await File.WriteAllTextAsync(dir["node-agent.json"], config.ToJsonString());
var binary = Path.Combine(Run.RepoRoot, "out", "bin", "toolforge-node-agent");
var useBinary = File.Exists(binary);
var start = Stopwatch.StartNew();
await using var agent = useBinary
    ? BackgroundProcess.Start(binary, ["--config", dir["node-agent.json"]])
    : BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);
await agent.WaitForOutputAsync("Application started", TimeSpan.FromSeconds(30));
var ready = start.Elapsed.TotalMilliseconds;
await Task.Delay(TimeSpan.FromSeconds(5));
var cpu0 = CpuSeconds(agent.Pid);
var t0 = Stopwatch.StartNew();
await Task.Delay(TimeSpan.FromSeconds(60));
var cpu = (CpuSeconds(agent.Pid) - cpu0) / t0.Elapsed.TotalSeconds;
var rss = RssMb(agent.Pid);
Console.WriteLine($"daemon ({(useBinary ? "out/bin publish" : "dotnet dll")}): time to 'Application started' (READY=1) {ready:0} ms; after a minute with the audit every 10 s: RSS {rss:0.0} MB, CPU {cpu * 100:0.0} % of one core");
Console.WriteLine(agent.Output.Contains("kube-proxy.iptables", StringComparison.Ordinal) ? "(the audit ran)" : "(no audit line seen in the log)");

static double CpuSeconds(int pid)
{
    var stat = File.ReadAllText($"/proc/{pid}/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
}

static double RssMb(int pid) =>
    File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0).Single();

static string ToKubectlJson(List<KubeProxyRules.Svc> services)
{
    var items = new JsonArray();
    foreach (var s in services)
    {
        items.Add(JsonNode.Parse(k8s.KubernetesJson.Serialize(FakeKubeApiServer.Service(s.Namespace, s.Name, s.ClusterIP, (s.PortName, s.Port, s.Protocol)))));
        if (s.Endpoints.Length > 0)
        {
            items.Add(JsonNode.Parse(k8s.KubernetesJson.Serialize(FakeKubeApiServer.Slice(s.Namespace, s.Name, s.Endpoints.Select(e => e.Split(':')[0]).ToArray(), (s.PortName, int.Parse(s.Endpoints[0].Split(':')[1], CultureInfo.InvariantCulture), s.Protocol)))));
        }
    }

    foreach (var item in items)
    {
        item!["kind"] = item["spec"] is not null ? "Service" : "EndpointSlice";
    }

    return new JsonObject { ["kind"] = "List", ["items"] = items }.ToJsonString();
}
