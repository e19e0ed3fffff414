using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

// Coordinator ingest with N simulated nodes (each its own certificate and connection, as on the cluster), in one run:
// the ceiling of a bare grpc-dotnet unary server with the same mutual TLS; one coordinator on SQLite; one on a private
// PostgreSQL 15; three coordinator processes on that PostgreSQL behind haproxy (the shipped example config). Then
// ListNodes p50/p99 with 10,000 nodes stored, on SQLite and on PostgreSQL.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
if (args is ["sync", ..])
{
    // SQLite's synchronous=FULL against NORMAL, the writer alone: `Coordinator.Bench sync [seconds] [rounds]`.
    await SyncCost.RunAsync(TimeSpan.FromSeconds(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5), args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3);
    return;
}

if (args is ["ready", ..])
{
    // READY alone, on a SQLite store of N nodes: `Coordinator.Bench ready [nodes] [rounds]`.
    await Ready.RunAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 7);
    return;
}

if (args is ["echo-serve", var echoPort, var echoCert, var echoKey, var echoCa])
{
    // The fleet's peer (Fleet.cs): the bare echo as a process of its own, so that its CPU and memory are its own.
    await using var served = await EchoServer.StartAsync(Certificates.LoadWithKey(echoCert, echoKey), Certificates.LoadBundle(echoCa), int.Parse(echoPort, CultureInfo.InvariantCulture));
    Console.WriteLine($"echo listening on {served.Address}");
    await served.WaitForShutdownAsync();
    return;
}

// `--sqlite-only`: the echo ceiling and SQLite, no PostgreSQL (a quick end-to-end look at a SQLite change).
var sqliteOnly = args.Contains("--sqlite-only");
args = [.. args.Where(a => a != "--sqlite-only")];
if (args is ["fleet", ..])
{
    // The simulated agents trust only the coordinator's CA: no system store to load for each one's first handshake, as
    // agentctl does (SystemTrust; before this process's first handshake). Only here: the in-process figures below keep it.
    Toolforge.Agents.Common.Tls.SystemTrust.NarrowTo("/nonexistent/toolforge-agents-bench-ca.pem");
    var postgresOnly = args.Contains("--postgresql-only");
    var steadyOnly = args.Contains("--steady-only"); // the steady state and where its memory is, nothing after it
    var noPeer = args.Contains("--no-peer"); // without the echo peer's run (its figure from an earlier run)
    args = [.. args.Where(a => a is not ("--postgresql-only" or "--steady-only" or "--no-peer"))];
    // Only the fleet (issue 28): `Coordinator.Bench fleet [agents] [steady seconds]`. A run without arguments (what
    // ./build.sh bench does) ends with it too, at 10,000 agents.
    await Fleet.RunAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000,
        TimeSpan.FromSeconds(args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60), sqliteOnly, postgresOnly, steadyOnly, noPeer);
    return;
}

var withFleet = args.Length == 0;

var ingestNodes = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
var listNodes = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10000;
var duration = TimeSpan.FromSeconds(10);
Console.WriteLine($"== ingest: {ingestNodes} nodes, one mutual-TLS connection each, 64 reports in flight, {duration.TotalSeconds:0} s per target");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}");
await using var pg = sqliteOnly ? null : await PrivatePostgres.StartAsync();
var results = new Dictionary<string, double>();
var lists = new List<string>();
foreach (var engine in sqliteOnly ? ["sqlite"] : new[] { "sqlite", "postgresql" })
{
    var db = "bench_" + engine;
    if (engine == "postgresql")
    {
        await pg!.CreateDatabaseAsync(db);
    }

    await using var h = await CoordinatorHarness.StartAsync(editConfig: c =>
    {
        c["Log"]!["Level"] = "Error";
        LiftReportLimit(c);
        if (engine == "postgresql")
        {
            CoordinatorHarness.OnPostgres(pg!, db)(c);
            c["Coordinator"]!["SweepInterval"] = "00:00:05";
        }
    });
    var nodes = Enumerable.Range(0, ingestNodes).Select(i => $"node-{i:D5}.bench").ToList();
    var certs = nodes.Select(name => h.Pki.Issue(name)).ToList();
    var ca = Certificates.LoadBundle(h.CaPath);
    if (engine == "sqlite")
    {
        await using var echo = await EchoServer.StartAsync(h.Pki);
        results["echo"] = await Blast(echo.Address, nodes, certs, ca, duration);
    }

    results[engine] = await Blast(h.Address, nodes, certs, ca, duration);
    if (engine == "postgresql")
    {
        // Three instances as processes on the same database, behind haproxy; the same clients, through haproxy.
        await using var cluster = await CoordinatorCluster.StartFirstAsync(pg!, edit: c =>
        {
            c["Log"]!["Level"] = "Error";
            LiftReportLimit(c);
            c["Coordinator"]!["SweepInterval"] = "00:00:05";
        });
        await cluster.StartOthersAsync();
        var clusterCerts = nodes.Select(name => cluster.First.Pki.Issue(name)).ToList();
        results["cluster"] = await Blast(cluster.Haproxy.Address, nodes, clusterCerts, Certificates.LoadBundle(cluster.First.CaPath), duration);
    }

    // ListNodes with many nodes stored: the rest reported straight into the store (no connections needed).
    var store = h.Services.GetRequiredService<Toolforge.Agents.Coordinator.State.StateStore>();
    await Task.WhenAll(Enumerable.Range(ingestNodes, Math.Max(0, listNodes - ingestNodes)).Select(i => store.ApplyReportAsync(Report($"node-{i:D5}.bench", i))));
    lists.Add($"ListNodes, {listNodes} nodes, {(engine == "sqlite" ? "SQLite    " : "PostgreSQL")}: {await ListNodesAsync(h, listNodes)}");
    lists.Add($"a change to 100 watchers, {(engine == "sqlite" ? "SQLite    " : "PostgreSQL")}: {await WatchersAsync(h, 100, 200)}");
    if (engine == "postgresql")
    {
        lists.Add($"resync after the change listener's connection dropped, {listNodes} nodes, 100 changed meanwhile: {await Resync.MeasureAsync(h, pg!, db, listNodes, 100)}");
    }
    foreach (var c in certs)
    {
        c.Dispose();
    }
}

Console.WriteLine($"bare grpc-dotnet echo (ceiling):               {results["echo"],8:0} reports/s");
Console.WriteLine($"coordinator on SQLite:                         {results["sqlite"],8:0} reports/s = {100 * results["sqlite"] / results["echo"]:0} % of the ceiling");
if (sqliteOnly)
{
    Console.WriteLine(lists[0]);
    Console.WriteLine(lists[1]);
    return;
}

Console.WriteLine($"coordinator on PostgreSQL:                     {results["postgresql"],8:0} reports/s = {100 * results["postgresql"] / results["echo"]:0} % of the ceiling; costs {100 - (100 * results["postgresql"] / results["sqlite"]):0} % of SQLite's ingest (goal: <= 25 %)");
Console.WriteLine($"3 coordinators on PostgreSQL behind haproxy:   {results["cluster"],8:0} reports/s = {100 * results["cluster"] / results["echo"]:0} % of the ceiling (one machine: 3 processes, haproxy and the clients share its cores)");
foreach (var l in lists)
{
    Console.WriteLine(l);
}

if (withFleet)
{
    await Fleet.RunAsync(10_000, TimeSpan.FromSeconds(60), sqliteOnly: false);
}

static async Task<string> ListNodesAsync(CoordinatorHarness h, int n)
{
    var admin = h.AdminClient(CoordinatorHarness.Viewer);
    var times = new List<double>();
    for (var i = 0; i < 300; i++)
    {
        var t = Stopwatch.StartNew();
        var r = await admin.ListNodesAsync(new ListNodesRequest(), deadline: Deadline());
        times.Add(t.Elapsed.TotalMilliseconds);
        if (r.Nodes.Count != n)
        {
            throw new InvalidOperationException($"ListNodes returned {r.Nodes.Count}, not {n}");
        }
    }

    times.Sort();
    // Where the time goes: the response's protobuf encoding and decoding alone, in this process.
    var response = await admin.ListNodesAsync(new ListNodesRequest(), deadline: Deadline());
    var enc = Stopwatch.StartNew();
    byte[] bytes = [];
    for (var i = 0; i < 20; i++)
    {
        bytes = Google.Protobuf.MessageExtensions.ToByteArray(response);
    }

    var encMs = enc.Elapsed.TotalMilliseconds / 20;
    var dec = Stopwatch.StartNew();
    for (var i = 0; i < 20; i++)
    {
        _ = ListNodesResponse.Parser.ParseFrom(bytes);
    }

    var decMs = dec.Elapsed.TotalMilliseconds / 20;
    // Pages of 500 (issue 28: p99 <= 5 ms), walked through the whole list again and again.
    var pageTimes = new List<double>();
    var request = new ListNodesRequest { Limit = 500 };
    var seen = 0;
    for (var i = 0; i < 600; i++)
    {
        var t = Stopwatch.StartNew();
        var page = await admin.ListNodesAsync(request, deadline: Deadline());
        pageTimes.Add(t.Elapsed.TotalMilliseconds);
        seen += page.Nodes.Count;
        request.ContinueToken = page.ContinueToken;
        if (page.ContinueToken.Length == 0)
        {
            if (seen != n)
            {
                throw new InvalidOperationException($"the pages of ListNodes held {seen} nodes, not {n}");
            }

            seen = 0;
        }
    }

    pageTimes.Sort();
    return $"p50 {times[times.Count / 2]:0.0} ms, p99 {times[(int)(times.Count * 0.99)]:0.0} ms (goal: p99 <= 20 ms); response {bytes.Length / 1024} KiB, encode {encMs:0.0} ms, decode {decMs:0.0} ms"
        + $"; a page of 500: p50 {pageTimes[pageTimes.Count / 2]:0.0} ms, p99 {pageTimes[(int)(pageTimes.Count * 0.99)]:0.0} ms (goal: p99 <= 5 ms)";
}

// A node's change reaching 100 watchers (issue 28: p99 <= 50 ms from the report's arrival), each watcher its own
// connection that took the whole snapshot in chunks first. Measured from just before the report is sent (an upper bound:
// it adds the report's way to the coordinator); the report's own round trip in the same run is its peer figure.
static async Task<string> WatchersAsync(CoordinatorHarness h, int watchers, int changes)
{
    const string node = "node-00000.bench";
    var sent = new long[changes];
    var arrivals = new List<double>[watchers];
    var calls = new List<AsyncServerStreamingCall<WatchEvent>>();
    using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
    var readers = new List<Task>();
    for (var w = 0; w < watchers; w++)
    {
        var call = h.AdminClient(CoordinatorHarness.Viewer).Watch(new WatchRequest { SnapshotChunk = 500 }, cancellationToken: stop.Token);
        calls.Add(call);
        while (await call.ResponseStream.MoveNext(stop.Token) && call.ResponseStream.Current.Snapshot is { Continued: true })
        {
        }

        var mine = arrivals[w] = new List<double>(changes);
        readers.Add(Task.Run(async () =>
        {
            while (mine.Count < changes && await call.ResponseStream.MoveNext(stop.Token))
            {
                var e = call.ResponseStream.Current;
                var text = e.Node?.Name == node ? e.Node.Summary : string.Empty;
                var at = text.LastIndexOf("change ", StringComparison.Ordinal);
                if (at >= 0 && int.TryParse(text.AsSpan(at + 7), NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < changes)
                {
                    mine.Add(Stopwatch.GetElapsedTime(Volatile.Read(ref sent[i])).TotalMilliseconds);
                }
            }
        }));
    }

    var agent = h.AgentClient(node);
    var roundTrips = new List<double>(changes);
    for (var i = 0; i < changes; i++)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "0.1.0" };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Failing, Message = $"change {i}" });
        Volatile.Write(ref sent[i], Stopwatch.GetTimestamp());
        await agent.ReportAsync(r, deadline: Deadline());
        roundTrips.Add(Stopwatch.GetElapsedTime(sent[i]).TotalMilliseconds);
        await Task.Delay(20);
    }

    await Task.WhenAll(readers).WaitAsync(TimeSpan.FromMinutes(1));
    await stop.CancelAsync();
    foreach (var c in calls)
    {
        c.Dispose();
    }

    var all = arrivals.SelectMany(a => a).Order().ToList();
    roundTrips.Sort();
    if (all.Count != watchers * changes)
    {
        throw new InvalidOperationException($"{all.Count} of {watchers * changes} changes reached the watchers");
    }

    return $"p50 {all[all.Count / 2]:0.0} ms, p99 {all[(int)(all.Count * 0.99)]:0.0} ms from the report's send (goal: p99 <= 50 ms); "
        + $"the report's own round trip p50 {roundTrips[roundTrips.Count / 2]:0.0} ms, p99 {roundTrips[(int)(roundTrips.Count * 0.99)]:0.0} ms";
}

static async Task<double> Blast(string address, List<string> nodes, List<X509Certificate2> certs, X509Certificate2Collection ca, TimeSpan duration)
{
    // One channel (connection) per node; 64 nodes report at a time, each its full state (5 checks).
    var channels = certs.Select(c => CoordinatorChannel.Create(address, c, ca, TimeSpan.FromSeconds(10))).ToList();
    var clients = channels.Select(c => new AgentService.AgentServiceClient(c)).ToList();
    // Warm: every connection made once (TLS handshakes are not the ingest path).
    await Parallel.ForEachAsync(Enumerable.Range(0, nodes.Count), new ParallelOptions { MaxDegreeOfParallelism = 32 },
        async (i, ct) => await clients[i].ReportAsync(Report(nodes[i], 0), deadline: Deadline(), cancellationToken: ct));
    long done = 0;
    var sw = Stopwatch.StartNew();
    var workers = Enumerable.Range(0, 64).Select(async w =>
    {
        var i = w;
        var round = 0;
        while (sw.Elapsed < duration)
        {
            await clients[i % nodes.Count].ReportAsync(Report(nodes[i % nodes.Count], round++), deadline: Deadline());
            Interlocked.Increment(ref done);
            i += 64;
        }
    }).ToList();
    await Task.WhenAll(workers);
    var rate = done / sw.Elapsed.TotalSeconds;
    foreach (var c in channels)
    {
        c.Dispose();
    }

    return rate;
}

// Every call has a deadline: a hung server fails the run instead of hanging it.
// The ingest blast measures what the coordinator can take, so the per-node report limit (5/s, burst 20 by default:
// a flooding node is refused) is lifted to its maximum here; 1,000 nodes at ~2.5 reports/s each on average would
// otherwise be refused in bursts and the blast would measure the limiter.
static void LiftReportLimit(System.Text.Json.Nodes.JsonNode c)
{
    c["Coordinator"]!["ReportRate"] = 10_000;
    c["Coordinator"]!["ReportBurst"] = 100_000;
}

static DateTime Deadline() => DateTime.UtcNow.AddSeconds(30);

static ReportRequest Report(string node, int round)
{
    var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "0.1.0" };
    foreach (var check in new[] { "kubelet.unit", "kubelet.healthz", "docker.engine", "kube-proxy.iptables", "tenant.policy" })
    {
        r.Checks.Add(new CheckResult { Name = check, State = round % 50 == 0 && check == "docker.engine" ? CheckState.Warning : CheckState.Ok, Message = "fine" });
    }

    return r;
}

internal sealed class EchoService : AgentService.AgentServiceBase
{
    private static readonly ReportResponse Response = new() { HeartbeatInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(30)) };

    public override Task<ReportResponse> Report(ReportRequest request, ServerCallContext context) => Task.FromResult(Response);
}

internal sealed class EchoServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public string Address { get; }

    public static Task<EchoServer> StartAsync(DevPki pki) => StartAsync(pki.Issue("echo", server: true), new X509Certificate2Collection(pki.Ca), 0);

    /// <summary>
    /// A bare grpc-dotnet server answering every report at once, with the coordinator's transport: HTTP/2 only, mutual
    /// TLS 1.2/1.3 with the client's chain checked against the CA, the same stream and handshake limits.
    /// </summary>
    public static async Task<EchoServer> StartAsync(X509Certificate2 cert, X509Certificate2Collection ca, int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
            k.Listen(IPAddress.Loopback, port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                l.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = cert,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    ClientCertificateValidation = (c, chain, _) => Certificates.ValidateChain(c, ca) is null,
                    SslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
                    HandshakeTimeout = TimeSpan.FromSeconds(10),
                });
            });
        });
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        return new EchoServer(app, app.Urls.First().Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
