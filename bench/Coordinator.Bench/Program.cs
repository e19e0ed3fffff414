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
using Microsoft.Extensions.Logging;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

// Coordinator ingest with N simulated nodes (each its own certificate and connection, as on the cluster):
// reports/s through the real coordinator (validation, memory state, SQLite group commit) against the ceiling of a bare
// grpc-dotnet unary server with the same mutual TLS in the same run; then ListNodes p99 with N nodes stored.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var sizes = args.Length > 0 ? args.Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [1000, 10000];
foreach (var n in sizes)
{
    await using var h = await CoordinatorHarness.StartAsync(editConfig: c => c["Log"]!["Level"] = "Error");
    Console.WriteLine($"== {n} nodes");
    var fdLimit = long.Parse(File.ReadAllLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], CultureInfo.InvariantCulture);
    if (2L * n + 1000 > fdLimit)
    {
        // Client and server connections live in this one process: 2 file descriptors per node.
        Console.WriteLine($"ingest not measured: {n} connections each side need more than this process's {fdLimit} open files");
        var store = h.Services.GetRequiredService<Toolforge.Agents.Coordinator.State.StateStore>();
        await Task.WhenAll(Enumerable.Range(0, n).Select(i => store.ApplyReportAsync(Report($"node-{i:D5}.bench", i))));
        await ListNodesAsync(h, n);
        continue;
    }

    var sw = Stopwatch.StartNew();
    var nodes = Enumerable.Range(0, n).Select(i => $"node-{i:D5}.bench").ToList();
    var certs = nodes.Select(name => h.Pki.Issue(name)).ToList();
    Console.WriteLine($"issued {n} certificates in {sw.Elapsed.TotalSeconds:0.0}s");
    var ca = Certificates.LoadBundle(h.CaPath);

    // The ceiling: the same AgentService contract answered at once, same TLS, same clients.
    await using var echo = await EchoServer.StartAsync(h.Pki);
    var ceiling = await Blast(echo.Address, nodes, certs, ca, TimeSpan.FromSeconds(15));
    var real = await Blast(h.Address, nodes, certs, ca, TimeSpan.FromSeconds(15));
    Console.WriteLine($"bare grpc-dotnet echo (ceiling): {ceiling:0} reports/s");
    Console.WriteLine($"coordinator ingest:              {real:0} reports/s = {100 * real / ceiling:0} % of the ceiling");

    await ListNodesAsync(h, n);
    foreach (var c in certs)
    {
        c.Dispose();
    }
}

static async Task ListNodesAsync(CoordinatorHarness h, int n)
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
    Console.WriteLine($"ListNodes with {n} nodes: p50 {times[times.Count / 2]:0.0} ms, p99 {times[(int)(times.Count * 0.99)]:0.0} ms");
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

    public static async Task<EchoServer> StartAsync(DevPki pki)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        var cert = pki.Issue("echo", server: true);
        var ca = new X509Certificate2Collection(pki.Ca);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = cert,
                ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                ClientCertificateValidation = (c, chain, _) => Certificates.ValidateChain(c, ca) is null,
            });
        }));
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        return new EchoServer(app, app.Urls.First().Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
