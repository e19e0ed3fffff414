using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// The real coordinator program (SQLite) restarted (SIGTERM, then started again on the same database and port) under
/// 1,000 simulated agents, each its own mutual-TLS connection reporting every 2 s: every report an agent was told was
/// stored is there afterwards, every agent reports again, and no node is ever judged stale (issue 28's acceptance; the
/// 10,000 figure is the benchmark's). The simulated agents wait as the real ones do (ReportingService.NextWait): after
/// the restart their first report comes at a random moment of the 5 s reconnect window the coordinator told them.
/// </summary>
[Collection("cluster")]
public sealed class RestartStormTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int FleetSize = 1000;

    [Fact]
    public async Task A_restart_under_a_thousand_agents_loses_no_acknowledged_report_and_no_node_goes_stale()
    {
        await using var h = await CoordinatorHarness.StartAsync(asProcess: true, editConfig: c => c["Coordinator"]!["HeartbeatInterval"] = "00:00:10");
        await using var watch = BackgroundProcess.StartTool("agentctl", [.. h.AgentCtlArgs(CoordinatorHarness.Viewer), "watch", "-o", "json"],
            new Dictionary<string, string> { ["NO_COLOR"] = "1" });
        using var stop = new CancellationTokenSource();
        var fleet = new SimulatedFleet(h, h.Address, FleetSize);
        var fleetLoop = fleet.RunAsync(stop.Token);
        Assert.True(await Peer.EventuallyAsync(() => fleet.Acked.Count == FleetSize, TimeSpan.FromSeconds(180)), $"{fleet.Acked.Count} of {FleetSize} agents reported");

        var exit = await h.Process!.StopAsync(TimeSpan.FromSeconds(30)); // SIGTERM: the reports in flight finish or are refused
        var stoppedAt = DateTimeOffset.UtcNow;
        var back = Stopwatch.StartNew();
        await h.LaunchAsync(asProcess: true);
        Assert.True(await Peer.EventuallyAsync(() => fleet.AckedSince(stoppedAt) == FleetSize, TimeSpan.FromSeconds(120)),
            $"{fleet.AckedSince(stoppedAt)} of {FleetSize} agents reported again");
        var allBack = back.Elapsed;
        var peakKb = ProcStat.StatusKb(h.Process!.Pid, "VmHWM:");
        await Task.Delay(TimeSpan.FromSeconds(5)); // a few more reports from everyone on the new process
        await stop.CancelAsync();
        await fleetLoop;

        // Every report an agent was told was stored is there (or a later one).
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        await using (var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = h.DatabasePath, Mode = SqliteOpenMode.ReadOnly }.ToString()))
        {
            await c.OpenAsync();
            await using var cmd = new SqliteCommand("SELECT node, state FROM agents", c);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                if (r.GetString(0).StartsWith("sim-", StringComparison.Ordinal))
                {
                    stored[r.GetString(0)] = SimulatedFleet.SeqOf(ReportRequest.Parser.ParseFrom((byte[])r.GetValue(1)));
                }
            }
        }

        Assert.Equal(FleetSize, fleet.Acked.Count);
        var lost = fleet.Acked.Where(a => !stored.TryGetValue(a.Key, out var s) || s < a.Value).Select(a => $"{a.Key}: acknowledged {a.Value}, stored {stored.GetValueOrDefault(a.Key, -1)}").ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged reports lost:\n{string.Join("\n", lost.Take(10))}");

        var nodes = await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest());
        Assert.DoesNotContain(nodes.Nodes, n => n.State is NodeState.Stale or NodeState.Missing);
        var stale = watch.Output.Split('\n').Where(l => l.Contains("\"state\":\"stale\"", StringComparison.Ordinal)).ToList();
        Assert.True(stale.Count == 0, $"{stale.Count} stale events:\n{string.Join("\n", stale.Take(5))}");
        output.WriteLine($"restart under {FleetSize} agents: old process exit {exit}; every agent reporting again {allBack.TotalSeconds:0.0} s after the start; "
            + $"longest silence an agent saw {fleet.LongestGap.TotalSeconds:0.0} s; the new process's peak RSS {peakKb / 1024} MiB");
    }
}
