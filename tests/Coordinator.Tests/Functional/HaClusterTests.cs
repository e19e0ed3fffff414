using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Three real toolforge-coordinator processes on one private PostgreSQL 15, behind Debian's haproxy running the
/// shipped example config; 200 simulated agents, a simulated builder and `agentctl watch` all go through haproxy.
/// </summary>
[Collection("cluster")]
public sealed class HaClusterTests(PostgresFixture pg, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const int FleetSize = 200;

    [Fact]
    public async Task SIGKILL_of_one_of_three_instances_loses_no_node_the_watch_resumes_and_a_running_build_completes_once_with_its_whole_log()
    {
        await using var cluster = await CoordinatorCluster.StartFirstAsync(pg.Server);
        // The watch and the builder connect while only the first instance is up: they are on the one that dies.
        await using var watch = BackgroundProcess.StartTool("agentctl", [.. cluster.AgentCtlArgs(CoordinatorHarness.Viewer), "watch", "-o", "json"],
            new Dictionary<string, string> { ["NO_COLOR"] = "1" });
        Assert.True(await watch.WaitForOutputAsync("\"snapshot\"", TimeSpan.FromSeconds(30)), watch.Output);
        using var stop = new CancellationTokenSource();
        var builder = new SimulatedBuilder(cluster.First, cluster.Haproxy.Address);
        var builderLoop = builder.RunAsync(stop.Token);
        Assert.True(await Peer.EventuallyAsync(() => builder.Connections > 0, TimeSpan.FromSeconds(10)));
        await Task.Delay(500);

        await cluster.StartOthersAsync();
        var fleet = new SimulatedFleet(cluster.First, cluster.Haproxy.Address, FleetSize);
        var fleetLoop = fleet.RunAsync(stop.Token);
        Assert.True(await Peer.EventuallyAsync(() => fleet.Acked.Count == FleetSize, TimeSpan.FromSeconds(60)), $"{fleet.Acked.Count} agents reported");

        var build = await cluster.Admin(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-a" } } });
        Assert.True(await Peer.EventuallyAsync(() => builder.BatchesSent >= 5, TimeSpan.FromSeconds(20)), "the build did not start");

        var watchBefore = watch.Output.Length;
        cluster.First.Process!.Signal(9);
        var killedAt = Stopwatch.StartNew();

        // The build finishes, once, with every line.
        Assert.True(await Peer.EventuallyAsync(() => builder.Finished.Contains(build.Id), TimeSpan.FromSeconds(60)), "the builder did not finish");
        Build done = null!;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            done = cluster.Admin(CoordinatorHarness.Viewer).GetBuild(new GetBuildRequest { Id = build.Id }, deadline: DateTime.UtcNow.AddSeconds(5));
            return done.State == BuildState.Succeeded;
        }, TimeSpan.FromSeconds(20)), $"build state {done?.State}");
        Assert.Equal(1, builder.Received.Count(c => c.BuildId == build.Id));
        var log = await Run.DotnetToolAsync("agentctl", [.. cluster.AgentCtlArgs(CoordinatorHarness.Viewer), "build-log", build.Id], TimeSpan.FromSeconds(60));
        Assert.True(log.ExitCode == 0, log.ToString());
        Assert.Equal(SimulatedBuilder.Lines(), log.Stdout.TrimEnd('\n').Split('\n'));
        Assert.Equal(SimulatedBuilder.LineCount, await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM build_log WHERE build = {build.Id}", cluster.Database));

        // The watch came back (a new snapshot, then changes) and no node was ever stale.
        Assert.True(await Peer.EventuallyAsync(() => WatchResumed(watch.Output[watchBefore..]), TimeSpan.FromSeconds(30)), watch.Output[watchBefore..]);
        Assert.Contains("reconnecting", watch.Output[watchBefore..], StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromSeconds(Math.Max(0, 20 - killedAt.Elapsed.TotalSeconds))); // past 3 heartbeats after the kill
        var nodes = await cluster.Admin(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest());
        Assert.Equal(FleetSize, nodes.Nodes.Count(n => n.Name.StartsWith("sim-", StringComparison.Ordinal)));
        Assert.DoesNotContain(nodes.Nodes, n => n.State is NodeState.Stale or NodeState.Missing);
        var stale = watch.Output.Split('\n').Where(l => l.Contains("\"state\":\"stale\"", StringComparison.Ordinal)).ToList();
        Assert.True(stale.Count == 0, $"{stale.Count} stale events (kill at offset {watchBefore} of {watch.Output.Length}, "
            + $"{killedAt.Elapsed.TotalSeconds:0.0} s ago; longest silence an agent itself saw: {fleet.LongestGap.TotalSeconds:0.0} s, "
            + $"by {fleet.LongestGapNode}):\n{string.Join("\n", stale.Take(5))}");

        await stop.CancelAsync();
        await Task.WhenAll(fleetLoop, builderLoop);
        Assert.Equal(FleetSize, fleet.Acked.Count);
        output.WriteLine($"HA kill: longest silence of an agent {fleet.LongestGap.TotalSeconds:0.0} s; build finished {killedAt.Elapsed.TotalSeconds:0.0} s after the kill");
        Assert.True(fleet.LongestGap < TimeSpan.FromSeconds(18), $"an agent was silent for {fleet.LongestGap}");
    }

    [Fact]
    public async Task PostgreSQL_stopped_for_30_s_means_NOT_SERVING_then_recovery_without_a_restart_and_no_acknowledged_report_lost()
    {
        await using var cluster = await CoordinatorCluster.StartFirstAsync(pg.Server);
        await cluster.StartOthersAsync();
        var pids = cluster.All.Select(h => h.Process!.Pid).ToList();
        using var stop = new CancellationTokenSource();
        var fleet = new SimulatedFleet(cluster.First, cluster.Haproxy.Address, FleetSize);
        var fleetLoop = fleet.RunAsync(stop.Token);
        Assert.True(await Peer.EventuallyAsync(() => fleet.Acked.Count == FleetSize, TimeSpan.FromSeconds(60)));

        await pg.Server.StopAsync();
        var stoppedAt = Stopwatch.StartNew();
        try
        {
            foreach (var h in cluster.All)
            {
                var health = new Health.HealthClient(h.Channel(CoordinatorHarness.Viewer));
                Assert.True(await Peer.EventuallyAsync(
                    () => health.Check(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(3)).Status == HealthCheckResponse.Types.ServingStatus.NotServing,
                    TimeSpan.FromSeconds(10)), $"instance on {h.Port} still SERVING");
            }

            await cluster.Haproxy.WaitForAsync([], TimeSpan.FromSeconds(10), othersDown: true); // haproxy took them all out
            await Task.Delay(TimeSpan.FromSeconds(30) - stoppedAt.Elapsed);
        }
        finally
        {
            await pg.Server.RestartAsync();
        }

        var restartedAt = DateTimeOffset.UtcNow;
        foreach (var h in cluster.All)
        {
            var health = new Health.HealthClient(h.Channel(CoordinatorHarness.Viewer));
            Assert.True(await Peer.EventuallyAsync(
                () => health.Check(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(3)).Status == HealthCheckResponse.Types.ServingStatus.Serving,
                TimeSpan.FromSeconds(15)), $"instance on {h.Port} did not recover");
        }

        Assert.Equal(pids, cluster.All.Select(h => h.Process!.Pid)); // no restart
        Assert.True(await Peer.EventuallyAsync(() => fleet.AckedSince(restartedAt) == FleetSize, TimeSpan.FromSeconds(60)),
            $"{fleet.AckedSince(restartedAt)} of {FleetSize} agents got through after the database came back");
        await stop.CancelAsync();
        await fleetLoop;

        // Every report an agent was told was stored is there (or a later one).
        await using var c = await pg.Server.OpenAsync(cluster.Database);
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT node, state FROM agents", c);
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                var state = ReportRequest.Parser.ParseFrom((byte[])r.GetValue(1));
                stored[r.GetString(0)] = SimulatedFleet.SeqOf(state);
            }
        }

        foreach (var (node, acked) in fleet.Acked)
        {
            Assert.True(stored.TryGetValue(node, out var s) && s >= acked, $"{node}: acknowledged seq {acked}, stored {(stored.TryGetValue(node, out var x) ? x : -1)}");
        }
    }

    private static bool WatchResumed(string output)
    {
        var lines = output.Split('\n');
        var snapshot = Array.FindIndex(lines, l => l.Contains("\"snapshot\"", StringComparison.Ordinal));
        return snapshot >= 0 && lines.Skip(snapshot + 1).Any(l => l.Contains("\"node\"", StringComparison.Ordinal));
    }
}

/// <summary>Three coordinator processes and 200 agents load both cores: nothing else runs beside them.</summary>
[CollectionDefinition("cluster", DisableParallelization = true)]
public sealed class ClusterCollection;

/// <summary>
/// A builder as the real one behaves: one connection for its command stream and its progress; after the stream
/// breaks it reconnects listing the commands it still runs; each progress batch carries the number of its first line
/// and is sent again until some instance takes it.
/// </summary>
internal sealed class SimulatedBuilder(CoordinatorHarness certs, string address)
{
    public const int Batches = 30;
    public const int PerBatch = 20;
    public const int LineCount = Batches * PerBatch;

    private readonly ConcurrentDictionary<string, byte> _active = new(StringComparer.Ordinal);

    public ConcurrentBag<Command> Received { get; } = [];

    public ConcurrentBag<string> Finished { get; } = [];

    public int Connections;
    public int BatchesSent;

    public static IEnumerable<string> Lines() => Enumerable.Range(1, LineCount).Select(i => $"Step {i}/{LineCount} : RUN make {i}");

    public async Task RunAsync(CancellationToken ct)
    {
        var (cert, key) = certs.Issue(CoordinatorHarness.Builder);
        using var channel = CoordinatorChannel.Create(address, cert, key, certs.CaPath, TimeSpan.FromSeconds(3));
        var client = new AgentService.AgentServiceClient(channel);
        var builds = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var hello = new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder };
                hello.Running.AddRange(_active.Keys);
                using var call = client.ReceiveCommands(hello, cancellationToken: ct);
                Interlocked.Increment(ref Connections);
                await foreach (var command in call.ResponseStream.ReadAllAsync(ct))
                {
                    Received.Add(command);
                    if (_active.TryAdd(command.Id, 0))
                    {
                        builds.Add(Task.Run(() => BuildAsync(client, command, ct)));
                    }
                }
            }
            catch (RpcException) when (!ct.IsCancellationRequested)
            {
                await Task.Delay(Random.Shared.Next(200, 500), CancellationToken.None);
            }
            catch (Exception ex) when (ex is OperationCanceledException || (ex is RpcException && ct.IsCancellationRequested))
            {
                break;
            }
        }

        await Task.WhenAll(builds);
    }

    private async Task BuildAsync(AgentService.AgentServiceClient client, Command command, CancellationToken ct)
    {
        var lines = Lines().ToList();
        for (var b = 0; b < Batches; b++)
        {
            var p = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, FirstLine = (b * PerBatch) + 1 };
            p.State = b == 0 ? BuildState.Running : BuildState.Unspecified;
            p.LogLines.AddRange(lines.Skip(b * PerBatch).Take(PerBatch));
            await SendAsync(client, p, ct);
            Interlocked.Increment(ref BatchesSent);
            await Task.Delay(200, CancellationToken.None);
        }

        await SendAsync(client, new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded }, ct);
        _active.TryRemove(command.Id, out _);
        Finished.Add(command.BuildId);
    }

    private static async Task SendAsync(AgentService.AgentServiceClient client, IMessage<CommandProgress> p, CancellationToken ct)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            try
            {
                await client.ReportCommandProgressAsync((CommandProgress)p, deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: CancellationToken.None);
                return;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown)
            {
                await Task.Delay(200, CancellationToken.None);
            }
        }

        throw new InvalidOperationException("progress never delivered");
    }
}
