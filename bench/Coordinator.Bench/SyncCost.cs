using System.Diagnostics;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.TestSupport;

/// <summary>
/// What SQLite's synchronous=FULL costs the coordinator's writer against NORMAL (`Coordinator.Bench sync`): the
/// single writer with its group commit, fed SaveReport writes of 1,000 nodes (5 checks each, a state change now and
/// then) by 1 and by 64 callers at once, on a file in the temp directory. Rounds alternate NORMAL and FULL so a busy
/// machine weighs on both alike.
/// </summary>
internal static class SyncCost
{
    public static async Task RunAsync(TimeSpan duration, int rounds)
    {
        Console.WriteLine($"== SQLite writer, synchronous NORMAL vs FULL; {duration.TotalSeconds:0} s per run, {rounds} rounds; machine: {Environment.ProcessorCount} cores");
        using var dir = new TempDir("sync-bench");
        foreach (var inFlight in new[] { 1, 64 })
        {
            var rates = new Dictionary<bool, List<double>> { [false] = [], [true] = [] };
            for (var round = 0; round < rounds; round++)
            {
                foreach (var full in new[] { false, true })
                {
                    var path = dir[$"r{round}-{inFlight}-{(full ? "full" : "normal")}.db"];
                    var store = new SqliteStore(path, full);
                    store.Migrate();
                    var writer = new StoreWriter(store, NullLogger.Instance);
                    try
                    {
                        rates[full].Add(await BlastAsync(writer, inFlight, duration));
                    }
                    finally
                    {
                        await writer.DisposeAsync();
                        store.Dispose();
                    }
                }
            }

            var normal = rates[false].Order().ToList()[rates[false].Count / 2];
            var fullRate = rates[true].Order().ToList()[rates[true].Count / 2];
            Console.WriteLine($"{inFlight,3} in flight: NORMAL {normal,8:0} reports/s ({Format(rates[false])}), FULL {fullRate,8:0} reports/s ({Format(rates[true])}): " +
                $"FULL costs {100 - (100 * fullRate / normal):0} %; per report {1000 / normal * inFlight:0.00} vs {1000 / fullRate * inFlight:0.00} ms");
        }
    }

    private static string Format(List<double> rates) => string.Join(" ", rates.Select(r => r.ToString("0", System.Globalization.CultureInfo.InvariantCulture)));

    private static async Task<double> BlastAsync(StoreWriter writer, int inFlight, TimeSpan duration)
    {
        long done = 0;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async w =>
        {
            var i = w;
            while (sw.Elapsed < duration)
            {
                await writer.WriteAsync(Report(i % 1000, i / 1000)).ConfigureAwait(false);
                Interlocked.Increment(ref done);
                i += inFlight;
            }
        }));
        return done / sw.Elapsed.TotalSeconds;
    }

    private static SaveReport Report(int node, int round)
    {
        var r = new ReportRequest { Node = $"node-{node:D5}.bench", Agent = AgentKind.Node, AgentVersion = "0.1.0" };
        foreach (var check in new[] { "kubelet.unit", "kubelet.healthz", "docker.engine", "kube-proxy.iptables", "tenant.policy" })
        {
            r.Checks.Add(new CheckResult { Name = check, State = CheckState.Ok, Message = "fine" });
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        CheckChange[] changes = round % 50 == 0 ? [new CheckChange("docker.engine", (int)CheckState.Warning, "slow")] : [];
        return new SaveReport(r.Node, now, (int)AgentKind.Node, "0.1.0", now, 30_000, r.ToByteArray(), changes, [], [], null);
    }
}
