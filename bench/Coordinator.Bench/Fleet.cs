using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Npgsql;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

/// <summary>
/// Issue 28's fleet on one coordinator program (the binary ./build.sh build puts in out/bin, as a process of its own):
/// N simulated agents, each its own mutual-TLS connection and certificate, reporting every heartbeat (30 s) from a
/// random moment of it, a report turning a check over with the chance that makes 1 % of the nodes change one a minute.
/// Measured per store (SQLite, then PostgreSQL): the coordinator's CPU and RSS over a steady window; ListNodes (whole
/// and a page of 500) and `agentctl nodes --state failing` from other processes while the fleet reports; a restart
/// (SIGTERM, start) under the fleet — every agent back, acknowledged reports stored, nodes judged stale, peak RSS; and
/// READY (sd_notify) of a start on the database the fleet left (the JIT build's beside it).
/// </summary>
internal static class Fleet
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(30);

    public static async Task RunAsync(int agents, TimeSpan steady, bool sqliteOnly, bool postgresOnly = false, bool steadyOnly = false, bool noPeer = false)
    {
        var outBin = Path.Combine(Run.RepoRoot, "out", "bin");
        var native = Path.Combine(outBin, "toolforge-coordinator");
        if (!File.Exists(native))
        {
            throw new InvalidOperationException($"{native} is missing: ./build.sh build (./build.sh bench runs it first)");
        }

        Environment.SetEnvironmentVariable("TFA_PROGRAMS", outBin); // the harness runs out/bin's programs as processes
        AsTheUnit();
        // 1 % of the nodes change a check a minute: heartbeats a minute per node = 60 / 30 = 2, so a report changes one
        // with the chance 0.01 / 2.
        var chance = 0.01 / (TimeSpan.FromMinutes(1) / Heartbeat);
        Console.WriteLine($"== fleet: {agents} agents, one mutual-TLS connection each, heartbeat {Heartbeat.TotalSeconds:0} s, 1 % of nodes change a check a minute; steady window {steady.TotalSeconds:0} s");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}; coordinator: {Describe(native)}");
        await using var pg = sqliteOnly ? null : await PrivatePostgres.StartAsync();
        foreach (var engine in sqliteOnly ? ["sqlite"] : postgresOnly ? ["postgresql"] : new[] { "sqlite", "postgresql" })
        {
            var db = "fleet_" + engine;
            if (pg is not null && engine == "postgresql")
            {
                await pg.CreateDatabaseAsync(db);
            }

            await RunOneAsync(engine, agents, steady, chance, pg, db, native, steadyOnly, withPeer: !noPeer && (engine == "sqlite" || postgresOnly));
        }
    }

    /// <summary>
    /// As the unit runs it: its Environment='s DOTNET_ settings, read from the shipped unit, set in this process for the
    /// processes started from here.
    /// </summary>
    internal static void AsTheUnit()
    {
        foreach (var setting in File.ReadLines(Path.Combine(Run.RepoRoot, "systemd", "toolforge-coordinator.service"))
            .Where(l => l.StartsWith("Environment=", StringComparison.Ordinal)).SelectMany(l => l["Environment=".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(s => s.StartsWith("DOTNET_", StringComparison.Ordinal)).Select(s => s.Split('=', 2)))
        {
            Environment.SetEnvironmentVariable(setting[0], setting[1]);
            Console.WriteLine($"as the unit: {setting[0]}={setting[1]}");
        }
    }

    private static async Task RunOneAsync(string engine, int agents, TimeSpan steady, double chance, PrivatePostgres? pg, string db, string native, bool steadyOnly, bool withPeer)
    {
        var label = engine == "sqlite" ? "SQLite    " : "PostgreSQL";
        var metricsPort = Peer.FreePort();
        await using var h = await CoordinatorHarness.StartAsync(asProcess: true, editConfig: c =>
        {
            c["Coordinator"]!["HeartbeatInterval"] = "00:00:30";
            c["Metrics"]!["Port"] = metricsPort; // the managed heap's share of the RSS (dotnet_total_memory_bytes)
            if (pg is not null && engine == "postgresql")
            {
                CoordinatorHarness.OnPostgres(pg, db)(c);
            }
        });
        var pid = h.Process!.Pid;
        await Task.Delay(TimeSpan.FromSeconds(5)); // settled, as the peer's figure before any connection
        var idleRss = ProcStat.StatusKb(pid, "VmRSS:");
        if (withPeer)
        {
            // The same fleet against the bare echo first (the certificates it issues are the coordinator's fleet's too).
            Console.WriteLine(await EchoPeerAsync(h, agents, steady, chance));
        }

        using var stop = new CancellationTokenSource();
        var fleet = new SimulatedFleet(h, h.Address, agents, Heartbeat, chance);
        var issue = Stopwatch.StartNew();
        var running = fleet.RunAsync(stop.Token);
        if (!await Peer.EventuallyAsync(() => fleet.Acked.Count == agents, TimeSpan.FromMinutes(10)))
        {
            throw new InvalidOperationException($"{fleet.Acked.Count} of {agents} agents reported");
        }

        var connected = issue.Elapsed;
        await Task.Delay(Heartbeat); // one whole heartbeat with every agent connected before measuring

        // Steady state: the coordinator process's CPU (user + system) and RSS over the window.
        var (cpuPercent, rss, perSecond, perMinute) = await SteadyAsync(pid, fleet, steady);
        Console.WriteLine($"{label} steady state: coordinator CPU {cpuPercent:0.0} % of a core (goal: <= 10 %), RSS {rss / 1024} MiB (goal: <= 200 MB; "
            + $"{idleRss / 1024} MiB before any connection: {(rss - idleRss) / (double)agents:0} KiB a connection); "
            + $"{perSecond:0} reports/s, {perMinute:0} changes/min; every agent connected {connected.TotalSeconds:0} s after the start (first reports spread over one heartbeat)");
        Console.WriteLine($"{label} where the RSS is: {await MemoryAsync(pid, metricsPort)}");
        if (steadyOnly)
        {
            await stop.CancelAsync();
            await running;
            return;
        }

        // Listings from other processes while the fleet reports.
        Console.WriteLine($"{label} {await ListingsAsync(h, agents)}");

        // A restart under the fleet.
        Console.WriteLine($"{label} {await RestartAsync(h, fleet, agents)}");
        await stop.CancelAsync();
        await running;
        var lost = await LostAsync(h, fleet, engine, pg, db);
        Console.WriteLine($"{label} after the restart: {lost} acknowledged reports not stored (goal: 0)");

        // READY of a start on the database the fleet left (its nodes to load), the JIT build beside it.
        await h.Process!.StopAsync(TimeSpan.FromSeconds(30));
        var (readyNative, loadedRss, _) = await ReadyAsync([native], h.ConfigPath);
        var (readyJit, _, _) = await ReadyAsync(["dotnet", Run.ToolPath("toolforge-coordinator")], h.ConfigPath);
        Console.WriteLine($"{label} READY with {agents} nodes stored: {readyNative.TotalMilliseconds:0} ms (goal: <= 200 ms); the JIT build's: {readyJit.TotalMilliseconds:0} ms; "
            + $"RSS with the {agents} nodes loaded and no connection: {loadedRss / 1024} MiB (the rest of the steady state's RSS is the connections')");
    }

    /// <summary>The process's CPU (user + system, % of a core) and RSS over the window, with the fleet's reports a second and changes a minute.</summary>
    private static async Task<(double CpuPercent, long RssKb, double Reports, double Changes)> SteadyAsync(int pid, SimulatedFleet fleet, TimeSpan steady)
    {
        var (cpu0, reports0, changes0, t0) = (ProcStat.CpuSeconds(pid), fleet.Reports, fleet.Changes, Stopwatch.GetTimestamp());
        await Task.Delay(steady);
        var (cpu1, reports1, changes1, took) = (ProcStat.CpuSeconds(pid), fleet.Reports, fleet.Changes, Stopwatch.GetElapsedTime(t0));
        return (100 * (cpu1 - cpu0) / took.TotalSeconds, ProcStat.StatusKb(pid, "VmRSS:"), (reports1 - reports0) / took.TotalSeconds, (changes1 - changes0) / took.TotalMinutes);
    }

    /// <summary>
    /// The fleet's peer: the same agents (certificates, heartbeat, changes) against the bare grpc-dotnet echo with the
    /// coordinator's transport (Program.cs's EchoServer, the coordinator's certificate), run as a process of its own
    /// with the unit's DOTNET_ settings. It is JIT-compiled (the coordinator is native): its RSS before any connection
    /// is higher for that, so the comparable figure is what each connection adds.
    /// </summary>
    private static async Task<string> EchoPeerAsync(CoordinatorHarness h, int agents, TimeSpan steady, double chance)
    {
        var port = Peer.FreePort();
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("this process's executable is unknown");
        string[] command = Path.GetFileNameWithoutExtension(self) == "dotnet" ? [self, typeof(Fleet).Assembly.Location] : [self];
        await using var echo = BackgroundProcess.Start(command[0], [.. command[1..], "echo-serve", port.ToString(CultureInfo.InvariantCulture),
            Path.Combine(h.CertDir, "coordinator.pem"), Path.Combine(h.CertDir, "coordinator.key"), h.CaPath]);
        if (!await echo.WaitForOutputAsync("echo listening", TimeSpan.FromSeconds(60)))
        {
            throw new InvalidOperationException($"the echo peer did not start: {echo.Output}");
        }

        await Task.Delay(TimeSpan.FromSeconds(5));
        var idle = ProcStat.StatusKb(echo.Pid, "VmRSS:");
        using var stop = new CancellationTokenSource();
        var fleet = new SimulatedFleet(h, $"https://127.0.0.1:{port}", agents, Heartbeat, chance);
        var running = fleet.RunAsync(stop.Token);
        double cpu, perSecond;
        long rss;
        string memory;
        try
        {
            if (!await Peer.EventuallyAsync(() => fleet.Acked.Count == agents, TimeSpan.FromMinutes(15)))
            {
                throw new InvalidOperationException($"{fleet.Acked.Count} of {agents} agents reported to the echo peer");
            }

            await Task.Delay(Heartbeat);
            (cpu, rss, perSecond, _) = await SteadyAsync(echo.Pid, fleet, steady);
            memory = $"Anonymous {ProcStat.RollupKb(echo.Pid, "Anonymous:") / 1024} MiB";
        }
        finally
        {
            await stop.CancelAsync(); // the simulated agents end with the peer's run, whatever ended it
            await running;
        }

        await echo.StopAsync(TimeSpan.FromSeconds(30));
        return $"the peer, bare grpc-dotnet echo (own process, JIT) under the same fleet: CPU {cpu:0.0} % of a core, RSS {rss / 1024} MiB "
            + $"({idle / 1024} MiB before any connection: {(rss - idle) / (double)agents:0} KiB a connection; {memory}); {perSecond:0} reports/s";
    }

    private static async Task<string> ListingsAsync(CoordinatorHarness h, int agents)
    {
        var admin = h.AdminClient(CoordinatorHarness.Viewer);
        var whole = new List<double>();
        for (var i = 0; i < 200; i++)
        {
            var t = Stopwatch.StartNew();
            var r = await admin.ListNodesAsync(new ListNodesRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            whole.Add(t.Elapsed.TotalMilliseconds);
            if (r.Nodes.Count < agents)
            {
                throw new InvalidOperationException($"ListNodes returned {r.Nodes.Count} nodes, fewer than {agents}");
            }
        }

        var pages = new List<double>();
        var request = new ListNodesRequest { Limit = 500 };
        for (var i = 0; i < 400; i++)
        {
            var t = Stopwatch.StartNew();
            var page = await admin.ListNodesAsync(request, deadline: DateTime.UtcNow.AddSeconds(30));
            pages.Add(t.Elapsed.TotalMilliseconds);
            request.ContinueToken = page.ContinueToken;
        }

        var agentctl = Path.Combine(Run.RepoRoot, "out", "bin", "agentctl");
        string[] argv = [.. h.AgentCtlArgs(CoordinatorHarness.Viewer), "nodes", "--state", "failing"];
        var ctl = new List<double>();
        var failing = 0;
        for (var i = 0; i < 23; i++)
        {
            var t = Stopwatch.StartNew();
            var r = await Run.ProcessAsync(agentctl, argv, TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["NO_COLOR"] = "1" });
            if (r.ExitCode is not (0 or 1))
            {
                throw new InvalidOperationException($"agentctl nodes --state failing: {r}");
            }

            failing = r.Stdout.Split('\n').Count(l => l.Contains(".tools.example", StringComparison.Ordinal));
            if (i >= 3)
            {
                ctl.Add(t.Elapsed.TotalMilliseconds);
            }
        }

        return $"ListNodes from another process, {agents} nodes: whole list p50 {P(whole, 0.5):0.0} ms, p99 {P(whole, 0.99):0.0} ms (goal: p99 <= 20 ms); "
            + $"a page of 500 p50 {P(pages, 0.5):0.0} ms, p99 {P(pages, 0.99):0.0} ms (goal: p99 <= 5 ms); "
            + $"agentctl nodes --state failing ({failing} nodes) as a whole process: median {P(ctl, 0.5):0} ms, p90 {P(ctl, 0.9):0} ms (goal: <= 100 ms)";
    }

    private static async Task<string> RestartAsync(CoordinatorHarness h, SimulatedFleet fleet, int agents)
    {
        var window = TimeSpan.FromSeconds(Math.Clamp(agents / 200.0, 1, Heartbeat.TotalSeconds)); // Coordinator:ReconnectRate 200/s
        await h.Process!.StopAsync(TimeSpan.FromSeconds(30));
        var stoppedAt = DateTimeOffset.UtcNow;
        var back = Stopwatch.StartNew();
        await h.LaunchAsync(asProcess: true);
        var started = back.Elapsed;

        // Judged stale: the watch of the new process, from its snapshot on.
        using var watchStop = new CancellationTokenSource();
        var stale = new HashSet<string>(StringComparer.Ordinal);
        var fellBehind = 0;
        var watch = Task.Run(async () =>
        {
            while (!watchStop.IsCancellationRequested)
            {
                try
                {
                    await WatchStaleAsync(h, stale, watchStop.Token);
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted && !watchStop.IsCancellationRequested)
                {
                    fellBehind++; // this busy process read too slowly: a new snapshot (its states count too)
                }
                catch (RpcException) when (watchStop.IsCancellationRequested)
                {
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
        var all = await Peer.EventuallyAsync(() => fleet.AckedSince(stoppedAt) == agents, 3 * window + TimeSpan.FromSeconds(30));
        var allBack = back.Elapsed;
        var peak = ProcStat.StatusKb(h.Process!.Pid, "VmHWM:");
        await Task.Delay(Heartbeat + TimeSpan.FromSeconds(5)); // a whole heartbeat more: would any node be judged stale?
        await watchStop.CancelAsync();
        await watch;
        var nodes = await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest { States = { NodeState.Stale, NodeState.Missing } });
        return $"restart (SIGTERM, start) under {agents} agents: the new process listening {started.TotalSeconds:0.0} s after the stop; "
            + (all ? $"every agent reporting again {allBack.TotalSeconds:0.0} s after the stop (goal: <= 2 x the jitter window = {2 * window.TotalSeconds:0} s)"
                : $"only {fleet.AckedSince(stoppedAt)} of {agents} agents back after {allBack.TotalSeconds:0} s")
            + $"; {stale.Count + nodes.Nodes.Count} nodes judged stale or missing (goal: 0; the watch reopened {fellBehind} times after falling behind); the new process's peak RSS {peak / 1024} MiB";
    }

    /// <summary>Adds every node the watch shows stale or missing (its snapshot, then its changes) until it ends.</summary>
    private static async Task WatchStaleAsync(CoordinatorHarness h, HashSet<string> stale, CancellationToken ct)
    {
        using var call = h.AdminClient(CoordinatorHarness.Viewer).Watch(new WatchRequest { SnapshotChunk = 500 }, cancellationToken: ct);
        while (await call.ResponseStream.MoveNext(ct))
        {
            var e = call.ResponseStream.Current;
            var names = (e.Snapshot?.Nodes ?? []).Where(n => n.State is NodeState.Stale or NodeState.Missing).Select(n => n.Name).ToList();
            if (e.Node is { State: NodeState.Stale or NodeState.Missing } changed)
            {
                names.Add(changed.Name);
            }

            lock (stale)
            {
                stale.UnionWith(names);
            }
        }
    }

    /// <summary>Acknowledged reports whose sent_at the store does not hold (or a later one).</summary>
    private static async Task<int> LostAsync(CoordinatorHarness h, SimulatedFleet fleet, string engine, PrivatePostgres? pg, string db)
    {
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        const string sql = "SELECT node, sent_at FROM agents";
        if (engine == "sqlite")
        {
            await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = h.DatabasePath, Mode = SqliteOpenMode.ReadOnly }.ToString());
            await c.OpenAsync();
            await using var cmd = new SqliteCommand(sql, c);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                stored[r.GetString(0)] = r.GetInt64(1);
            }
        }
        else
        {
            await using var c = await pg!.OpenAsync(db);
            await using var cmd = new NpgsqlCommand(sql, c);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                stored[r.GetString(0)] = r.GetInt64(1);
            }
        }

        return fleet.Acked.Count(a => !stored.TryGetValue(a.Key, out var s) || s < a.Value);
    }

    /// <summary>
    /// The managed heap's allocated bytes (the coordinator's own /metrics) beside the process's anonymous and file-backed
    /// memory. The rest of the anonymous memory is native (OpenSSL, SQLite, thread stacks) and the GC's committed but
    /// free space: not split further here.
    /// </summary>
    private static async Task<string> MemoryAsync(int pid, int metricsPort)
    {
        string managed;
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
            managed = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("dotnet_total_memory_bytes ", StringComparison.Ordinal))?.Split(' ')[1] ?? "not in /metrics";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            managed = $"unknown (/metrics: {ex.Message})"; // a figure missing, not the run lost
        }

        var rollup = new[] { "Rss", "Pss_File", "Anonymous" }.Select(f => $"{f} {ProcStat.RollupKb(pid, f + ":") / 1024} MiB");
        var managedMiB = double.TryParse(managed, CultureInfo.InvariantCulture, out var m) ? $"{m / (1024 * 1024):0} MiB" : managed;
        return $"{string.Join(", ", rollup)}; the managed heap's allocated bytes (GC.GetTotalMemory: live and not yet collected) {managedMiB}";
    }

    /// <summary>From the process's start to its READY=1 (sd_notify, as systemd waits for it under Type=notify).</summary>
    internal static async Task<(TimeSpan Ready, long RssKb, string Output)> ReadyAsync(string[] command, string config)
    {
        var dir = Directory.CreateTempSubdirectory("fleet-notify-");
        try
        {
            var path = Path.Combine(dir.FullName, "notify");
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Bind(new UnixDomainSocketEndPoint(path));
            var sw = Stopwatch.StartNew();
            await using var p = BackgroundProcess.Start(command[0], [.. command[1..], "--config", config], new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path });
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                if (System.Text.Encoding.ASCII.GetString(buffer, 0, n).Split('\n').Contains("READY=1"))
                {
                    var ready = sw.Elapsed;
                    await Task.Delay(TimeSpan.FromSeconds(5)); // settled: the store loaded, no connection
                    var rss = ProcStat.StatusKb(p.Pid, "VmRSS:");
                    await p.StopAsync(TimeSpan.FromSeconds(30));
                    return (ready, rss, p.Output);
                }
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static double P(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * q))];
    }

    private static string Describe(string native)
    {
        var info = new FileInfo(native);
        if (info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
        {
            info = target; // out/bin holds links into out/lib
        }

        return $"{native} ({info.Length / 1_000_000.0:0.0} MB)";
    }
}
