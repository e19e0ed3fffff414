using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

// agentctl as a whole process, as an admin types it, beside its peer in the same run:
//   `agentctl --version` (the NativeAOT binary ./build.sh build puts in out/bin) against `kubectl version --client`
//   (Debian's kubernetes-client), and the JIT-started agentctl.dll for reference;
//   `agentctl nodes` against a local coordinator (SQLite) with N nodes stored (default 1,000).
// Each command runs R times (default 30) after 3 warm-ups; the figures are the median and the 90th percentile.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var nodes = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
var runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 30;
var native = Path.Combine(Run.RepoRoot, "out", "bin", "agentctl");
if (!File.Exists(native))
{
    throw new FileNotFoundException($"{native} is missing: run ./build.sh build first (./build.sh bench does)");
}

var kubectl = File.Exists("/usr/bin/kubectl") ? "/usr/bin/kubectl" : throw new FileNotFoundException("/usr/bin/kubectl is missing (Debian package kubernetes-client)");
Console.WriteLine($"== agentctl: whole processes, {runs} runs each after 3 warm-ups; median / p90");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}");

var kube = await TimeAsync(kubectl, ["version", "--client"]);
var aot = await TimeAsync(native, ["--version"]);
var jit = await TimeAsync("dotnet", [Run.ToolPath("agentctl"), "--version"]);
Console.WriteLine($"kubectl version --client (peer):   {kube}");
Console.WriteLine($"agentctl --version (NativeAOT):    {aot} = {aot.Median / kube.Median:0.00} x kubectl (goal: <= 0.5 x)");
Console.WriteLine($"agentctl --version (JIT, .dll):    {jit} = {jit.Median / kube.Median:0.00} x kubectl");

await using var h = await CoordinatorHarness.StartAsync(editConfig: c => c["Log"]!["Level"] = "Error");
var store = h.Services.GetRequiredService<Toolforge.Agents.Coordinator.State.StateStore>();
await Task.WhenAll(Enumerable.Range(0, nodes).Select(i => store.ApplyReportAsync(Report($"node-{i:D5}.bench"))));
var (cert, key) = h.Issue(CoordinatorHarness.Admin);
string[] ctl = ["nodes", "--server", h.Address, "--cert", cert, "--key", key, "--ca", h.CaPath];
var check = await Run.ProcessAsync(native, ctl, TimeSpan.FromSeconds(30));
var listed = check.Stdout.Split('\n').Count(l => l.Contains(".bench", StringComparison.Ordinal));
if (check.ExitCode != 0 || listed != nodes)
{
    throw new InvalidOperationException($"agentctl nodes listed {listed} of {nodes} nodes: {check}");
}

var aotNodes = await TimeAsync(native, ctl);
var jitNodes = await TimeAsync("dotnet", [Run.ToolPath("agentctl"), .. ctl]);
Console.WriteLine($"agentctl nodes, {nodes} nodes (NativeAOT): {aotNodes} (goal: <= 150 ms)");
Console.WriteLine($"agentctl nodes, {nodes} nodes (JIT):       {jitNodes}");

async Task<Timing> TimeAsync(string file, string[] argv)
{
    var times = new List<double>();
    for (var i = 0; i < runs + 3; i++)
    {
        var sw = Stopwatch.StartNew();
        var r = await Run.ProcessAsync(file, argv, TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["NO_COLOR"] = "1" });
        sw.Stop();
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', argv)} failed: {r}");
        }

        if (i >= 3)
        {
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
    }

    times.Sort();
    return new Timing(times[times.Count / 2], times[(int)Math.Ceiling(times.Count * 0.9) - 1]);
}

static ReportRequest Report(string node)
{
    var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "0.1.0" };
    foreach (var check in new[] { "kubelet.unit", "kubelet.healthz", "containerd.cri", "kube-proxy.nftables", "tenant.policy" })
    {
        r.Checks.Add(new CheckResult { Name = check, State = CheckState.Ok, Message = "fine" });
    }

    return r;
}

internal readonly record struct Timing(double Median, double P90)
{
    public override string ToString() => $"{Median,6:0.0} ms / {P90,6:0.0} ms";
}
