using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Kubernetes;

// Node-agent benchmark:
//  1. 10,000 Services (~60-70k NAT rules) loaded into a network namespace: iptables-save alone (the floor) against the
//     whole audit (iptables-save + parse + compare), and our own work alone; medians of 5.
//  2. The same Services as kube-proxy's nftables proxier writes them, loaded with nft -f into another namespace:
//     `nft -j list table ip kube-proxy` alone against the whole nftables audit (listing + JSON parse + compare).
//  0. node.stuck-processes' /proc scan with 2,000 more processes, against ps over the same /proc (--proc-scan: only this).
//  3. The daemon against a fake API server holding those Services, iptables audit every 10 s: RSS and CPU after a
//     minute, and the time from exec to "Application started" (when systemd's READY=1 is sent).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
if (args is not ["--nft-offline", _] && args is not ["--iptables-offline", _] && !args.Contains("--iptables-only"))
{
    // node.stuck-processes' /proc scan with 2,000 more processes running, against `ps -eo pid,stat,wchan` over the same /proc.
    var sleepers = new List<System.Diagnostics.Process>();
    try
    {
        for (var i = 0; i < 2000; i++)
        {
            sleepers.Add(System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sleep", "300") { UseShellExecute = false })!);
        }

        var (scanTimes, psTimes) = (new List<double>(), new List<double>());
        var count = 0;
        for (var i = 0; i < 6; i++)
        {
            var sw = Stopwatch.StartNew();
            count = Toolforge.Agents.NodeAgent.Checks.Processes.ProcScanner.Scan("/proc").Scanned;
            scanTimes.Add(sw.Elapsed.TotalMilliseconds);
            sw.Restart();
            await Run.ProcessAsync("ps", ["-eo", "pid,stat,wchan"], TimeSpan.FromMinutes(1));
            psTimes.Add(sw.Elapsed.TotalMilliseconds);
        }

        Console.WriteLine($"stuck-process scan of {count} processes: {Median(scanTimes.Skip(1).ToList()):0.0} ms; ps -eo pid,stat,wchan over the same: {Median(psTimes.Skip(1).ToList()):0.0} ms");
    }
    finally
    {
        foreach (var p in sleepers)
        {
            p.Kill();
            p.Dispose();
        }
    }

    if (args is ["--proc-scan"])
    {
        return;
    }
}

if (args is ["--nft-offline", var keptDir])
{
    // Our own nftables work alone, on what an earlier run kept with TFA_BENCH_KEEP (no namespace, no nft).
    var keptJson = await File.ReadAllTextAsync(Path.Combine(keptDir, "kernel.json"));
    var keptModel = ClusterModel.FromKubectlJson([await File.ReadAllTextAsync(Path.Combine(keptDir, "cluster.json"))]);
    var (parses, compares) = OfflineRuns(() => NftRuleset.Parse(keptJson), r => NftAudit.Run(keptModel, r, new NftAuditOptions()).Count, after: () => { });

    {
        var rs = NftRuleset.Parse(keptJson);
        GC.Collect();
        var ok = GC.TryStartNoGCRegion(240L * 1024 * 1024);
        var csw = Stopwatch.StartNew();
        NftAudit.Run(keptModel, rs, new NftAuditOptions());
        var cms = csw.Elapsed.TotalMilliseconds;
        if (ok && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion)
        {
            GC.EndNoGCRegion();
        }

        GC.Collect();
        ok = GC.TryStartNoGCRegion(240L * 1024 * 1024);
        csw.Restart();
        NftRuleset.Parse(keptJson);
        var pms = csw.Elapsed.TotalMilliseconds;
        if (ok && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion)
        {
            GC.EndNoGCRegion();
        }

        Console.WriteLine($"without any GC: parse {pms:0} ms, compare {cms:0} ms (no-GC region: {ok})");
    }

    Console.WriteLine($"nftables own work, offline: parse {Median(parses):0} ms + compare {Median(compares):0} ms; GCs {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, paused {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms in all, allocated {GC.GetTotalAllocatedBytes() / 1048576} MB");
    return;
}

if (args is ["--iptables-offline", var iptDir])
{
    // Our own iptables work alone, on what an earlier run kept with TFA_BENCH_KEEP (no namespace, no iptables-save).
    var dumpBytes = await File.ReadAllBytesAsync(Path.Combine(iptDir, "iptables.txt"));
    var iptModel = ClusterModel.FromKubectlJson([await File.ReadAllTextAsync(Path.Combine(iptDir, "cluster.json"))]);
    var before = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalAllocatedBytes());
    var (parses, compares) = OfflineRuns(() => IptablesDump.Parse(dumpBytes), d => NatAudit.Run(iptModel, d, new NatAuditOptions()).Count,
        after: () => IptablesAuditCheck.ReturnMemory(dumpBytes.Length)); // as the daemon does after each big audit (not timed)

    Console.WriteLine($"iptables own work, offline ({dumpBytes.Length / 1024} KiB): parse {Median(parses):0} ms + compare {Median(compares):0} ms; "
        + $"GCs {GC.CollectionCount(0) - before.Item1}/{GC.CollectionCount(1) - before.Item2}/{GC.CollectionCount(2) - before.Item3} in 11 runs, allocated {(GC.GetTotalAllocatedBytes() - before.Item4) / 11 / 1048576} MB per run");
    return;
}

var auditOnly = args.Contains("--audit-only");
args = args.Where(a => a != "--audit-only").ToArray();
// --iptables-only: just the iptables audit (with TFA_BENCH_KEEP, keeps the dump for --iptables-offline).
var iptablesOnly = args.Contains("--iptables-only");
args = args.Where(a => a != "--iptables-only").ToArray();
// --daemon-only: just part 3 (the daemon), e.g. to compare GC settings: TFA_BENCH_AGENT_ENV="DOTNET_GCgen0size=0x400000;..."
var daemonOnly = args.Contains("--daemon-only");
args = args.Where(a => a != "--daemon-only").ToArray();
var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
var services = KubeProxyRules.Many(n);
await using var ns = await NetNamespace.CreateAsync();
var rules = KubeProxyRules.Generate(services);
await ns.RestoreAsync(rules);
var model = ClusterModel.FromKubectlJson([ToKubectlJson(services)]);

if (!daemonOnly)
{
    var dumpTimes = new List<double>();
    var totalTimes = new List<double>();
    var ownTimes = new List<double>();
    var parseTimes = new List<double>();
    var natRules = 0;
    var lastSize = 0;
    for (var i = 0; i < 6; i++)
    {
        // iptables-save alone: its output read into memory, as the daemon reads it (UTF-8 bytes).
        var alone = Stopwatch.StartNew();
        await ProcessRunner.RunBytesAsync("ip", ns.SaveCommand, TimeSpan.FromMinutes(2), lastSize, CancellationToken.None);
        var dump = alone.Elapsed.TotalMilliseconds;

        // The whole audit: the same, then our own parse and compare.
        var sw = Stopwatch.StartNew();
        var (text, length) = await ProcessRunner.RunBytesAsync("ip", ns.SaveCommand, TimeSpan.FromMinutes(2), lastSize, CancellationToken.None);
        lastSize = length;
        var own = Stopwatch.StartNew();
        var parsed = IptablesDump.Parse(text, length);
        var parseMs = own.Elapsed.TotalMilliseconds;
        var findings = NatAudit.Run(model, parsed, new NatAuditOptions());
        own.Stop();
        sw.Stop();
        if (findings.Count != 0)
        {
            throw new InvalidOperationException($"the generated ruleset should be clean: {findings.Count} findings, first {findings[0].Kind} {findings[0].Subject}");
        }

        natRules = parsed.Rules.Count(r => r.Table == "nat");
        if (Environment.GetEnvironmentVariable("TFA_BENCH_KEEP") is { Length: > 0 } keepIpt && i == 0)
        {
            await File.WriteAllBytesAsync(Path.Combine(keepIpt, "iptables.txt"), text.AsMemory(0, length));
            await File.WriteAllTextAsync(Path.Combine(keepIpt, "cluster.json"), ToKubectlJson(services));
        }

        IptablesAuditCheck.ReturnMemory(length); // as the daemon does after each big audit (not timed)
        if (i == 0)
        {
            continue; // warm-up
        }

        dumpTimes.Add(dump);
        totalTimes.Add(sw.Elapsed.TotalMilliseconds);
        ownTimes.Add(own.Elapsed.TotalMilliseconds);
        parseTimes.Add(parseMs);
    }

    Console.WriteLine($"iptables mode: {n} services, {natRules} nat rules, {rules.Length / 1024} KiB dump");
    Console.WriteLine($"iptables-save alone: {Median(dumpTimes):0} ms; whole audit: {Median(totalTimes):0} ms = {Median(totalTimes) / Median(dumpTimes):0.00} x the dump; our own work (parse + compare): {Median(ownTimes):0} ms (parse {Median(parseTimes):0} ms)");

    // nftables mode: the same Services, in kube-proxy's nftables layout.
    if (!iptablesOnly)
    {
        await using var nftNs = await NetNamespace.CreateAsync();
        using var nftDir = new TempDir();
        var nftText = KubeProxyNftRules.Generate(services);
        await File.WriteAllTextAsync(nftDir["rules.nft"], nftText);
        var load = Stopwatch.StartNew();
        await nftNs.RunAsync("nft", "-f", nftDir["rules.nft"]);
        var loadMs = load.Elapsed.TotalMilliseconds;
        var listing = nftNs.Exec("nft", "-j", "list", "table", "ip", "kube-proxy");
        var listTimes = new List<double>();
        var auditTimes = new List<double>();
        var nftOwn = new List<double>();
        var nftParse = new List<double>();
        var counts = (Rules: 0, Elements: 0, Bytes: 0);
        for (var i = 0; i < 6; i++)
        {
            var sw = Stopwatch.StartNew();
            var json = (await Run.ProcessAsync("ip", listing, TimeSpan.FromMinutes(2))).Stdout;
            var list = sw.Elapsed.TotalMilliseconds;
            var own = Stopwatch.StartNew();
            var ruleset = NftRuleset.Parse(json);
            var parseMs = own.Elapsed.TotalMilliseconds;
            var findings = NftAudit.Run(model, ruleset, new NftAuditOptions());
            own.Stop();
            sw.Stop();
            if (findings.Count != 0)
            {
                throw new InvalidOperationException($"the generated nftables ruleset should be clean: {findings.Count} findings, first {findings[0].Kind} {findings[0].Subject}: {findings[0].Message}");
            }

            counts = (ruleset.RuleCount, ruleset.ElementCount, json.Length);
            if (Environment.GetEnvironmentVariable("TFA_BENCH_KEEP") is { Length: > 0 } keep && i == 0)
            {
                await File.WriteAllTextAsync(Path.Combine(keep, "rules.nft"), nftText);
                await File.WriteAllTextAsync(Path.Combine(keep, "kernel.json"), json);
                await File.WriteAllTextAsync(Path.Combine(keep, "cluster.json"), ToKubectlJson(services));
            }
            if (i == 0)
            {
                continue; // warm-up
            }

            listTimes.Add(list);
            auditTimes.Add(sw.Elapsed.TotalMilliseconds);
            nftOwn.Add(own.Elapsed.TotalMilliseconds);
            nftParse.Add(parseMs);
        }

        Console.WriteLine($"nftables mode: {n} services, {counts.Rules} rules, {counts.Elements} map/set elements, {counts.Bytes / 1024} KiB of nft -j JSON (nft -f took {loadMs:0} ms)");
        Console.WriteLine($"nft -j list table ip kube-proxy alone: {Median(listTimes):0} ms; whole audit: {Median(auditTimes):0} ms = {Median(auditTimes) / Median(listTimes):0.00} x the listing; our own work (parse + compare): {Median(nftOwn):0} ms (parse {Median(nftParse):0} ms)");
    }

}

if (auditOnly || iptablesOnly)
{
    return;
}

// The daemon: READY time, RSS and CPU with the audit every 10 s; with the 10,000 Services above, and (the memory goal's
// second point) with 1,000 in a namespace of their own.
await DaemonAsync(services, ns);
if (n > 1000)
{
    var few = KubeProxyRules.Many(1000);
    await using var fewNs = await NetNamespace.CreateAsync();
    await fewNs.RestoreAsync(KubeProxyRules.Generate(few));
    await DaemonAsync(few, fewNs);
}

async Task DaemonAsync(List<KubeProxyRules.Svc> daemonServices, NetNamespace ns)
{
    await using var api = await FakeKubeApiServer.StartAsync();
    api.Put(FakeKubeApiServer.Node("bench-node"));
    foreach (var s in daemonServices)
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
    var agentEnv = (Environment.GetEnvironmentVariable("TFA_BENCH_AGENT_ENV") ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries)
        .Select(kv => kv.Split('=', 2) is [var k, var v] && k.Length > 0 ? (k, v) : throw new ArgumentException($"TFA_BENCH_AGENT_ENV: \"{kv}\" is not NAME=VALUE"))
        .ToDictionary(kv => kv.k, kv => kv.v);
    if (agentEnv.Count > 0)
    {
        Console.WriteLine("daemon environment: " + string.Join(' ', agentEnv.Select(kv => $"{kv.Key}={kv.Value}")));
    }

    await using var agent = useBinary
        ? BackgroundProcess.Start(binary, ["--config", dir["node-agent.json"]], agentEnv)
        : BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]], agentEnv);
    await agent.WaitForOutputAsync("Application started", TimeSpan.FromSeconds(30));
    var ready = start.Elapsed.TotalMilliseconds;
    await Task.Delay(TimeSpan.FromSeconds(5));
    var cpu0 = CpuSeconds(agent.Pid);
    var t0 = Stopwatch.StartNew();
    await Task.Delay(TimeSpan.FromSeconds(60));
    var cpu = (CpuSeconds(agent.Pid) - cpu0) / t0.Elapsed.TotalSeconds;
    var rss = StatusMb(agent.Pid, "VmRSS:");
    var (anon, file) = (StatusMb(agent.Pid, "RssAnon:"), StatusMb(agent.Pid, "RssFile:"));
    if (Environment.GetEnvironmentVariable("TFA_BENCH_SMAPS") is { Length: > 0 } smaps)
    {
        File.Copy($"/proc/{agent.Pid}/smaps", smaps, overwrite: true); // where the daemon's memory is, mapping by mapping
    }

    Console.WriteLine($"daemon ({(useBinary ? "out/bin publish" : "dotnet dll")}), {daemonServices.Count} services: time to 'Application started' (READY=1) {ready:0} ms; after a minute with the audit every 10 s: RSS {rss:0.0} MB (anonymous {anon:0.0}, file {file:0.0}), CPU {cpu * 100:0.0} % of one core");
    Console.WriteLine(agent.Output.Contains("kube-proxy.iptables", StringComparison.Ordinal) ? "(the audit ran)" : "(no audit line seen in the log)");
}

static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);

// Our own work alone, offline: 11 runs of parse then compare (the first a warm-up), each audit clean, then `after`.
static (List<double> Parses, List<double> Compares) OfflineRuns<T>(Func<T> parse, Func<T, int> findings, Action after)
{
    var (parses, compares) = (new List<double>(), new List<double>());
    for (var i = 0; i < 11; i++)
    {
        var sw = Stopwatch.StartNew();
        var parsed = parse();
        var parseMs = sw.Elapsed.TotalMilliseconds;
        var found = findings(parsed);
        if (i > 0)
        {
            parses.Add(parseMs);
            compares.Add(sw.Elapsed.TotalMilliseconds - parseMs);
        }

        if (found != 0)
        {
            throw new InvalidOperationException($"{found} findings");
        }

        after();
    }

    return (parses, compares);
}

static double CpuSeconds(int pid) => ProcStat.CpuSeconds(pid);

static double StatusMb(int pid, string field) => ProcStat.StatusKb(pid, field) / 1024.0;

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
