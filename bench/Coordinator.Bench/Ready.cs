using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.TestSupport;

/// <summary>
/// Issue 28's READY alone, without a fleet (`Coordinator.Bench ready [nodes] [rounds]`): a SQLite store of N nodes
/// (each with an agent's state and a few events, as the fleet leaves it), then the native binary started on it
/// several times, each start's READY (sd_notify) beside the coordinator's own line of where the load's time went.
/// </summary>
internal static class Ready
{
    public static async Task RunAsync(int nodes, int rounds)
    {
        var native = Path.Combine(Run.RepoRoot, "out", "bin", "toolforge-coordinator");
        if (!File.Exists(native))
        {
            throw new InvalidOperationException($"{native} is missing: ./build.sh build");
        }

        await using var h = await CoordinatorHarness.StartAsync();
        var store = h.Services.GetRequiredService<StateStore>();
        for (var round = 0; round < 3; round++) // three reports each: a state and a change or two in its history
        {
            await Task.WhenAll(Enumerable.Range(0, nodes).Select(i => store.ApplyReportAsync(Report($"node-{i:D5}.tools.example", round, i))));
        }

        await h.StopAsync();
        Fleet.AsTheUnit(); // for the starts measured (the in-process one above ran as the bench does)
        await h.EditConfigAsync(c => c["Log"] = new JsonObject { ["Level"] = "Information", ["Console"] = "plain" });
        Console.WriteLine($"== READY with {nodes} nodes stored (SQLite), {rounds} starts of {native}");
        var ready = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            var (took, rss, output) = await Fleet.ReadyAsync([native], h.ConfigPath);
            ready.Add(took.TotalMilliseconds);
            var loaded = output.Split('\n').FirstOrDefault(l => l.Contains("loaded in", StringComparison.Ordinal))?.Trim() ?? "(no load line)";
            Console.WriteLine($"READY {took.TotalMilliseconds:0} ms, RSS {rss / 1024} MiB; {loaded}");
        }

        if (int.TryParse(Environment.GetEnvironmentVariable("READY_BENCH_HOLD"), out var hold))
        {
            // To look at a start by hand (strace, perf) on the same store before it is removed.
            Console.WriteLine($"holding {hold} s: {native} --config {h.ConfigPath}");
            await Task.Delay(TimeSpan.FromSeconds(hold));
        }

        ready.Sort();
        Console.WriteLine($"READY with {nodes} nodes stored: median {ready[ready.Count / 2]:0} ms (goal: <= 200 ms), best {ready[0]:0} ms, worst {ready[^1]:0} ms");
    }

    private static ReportRequest Report(string node, int round, int i)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = "active (running)" });
        r.Checks.Add(new CheckResult { Name = "sim.flap", State = (round + i) % 2 == 0 ? CheckState.Ok : CheckState.Failing, Message = "changes now and then" });
        return r;
    }
}
