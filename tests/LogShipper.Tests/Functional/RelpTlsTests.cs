using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>RELP over TLS to a real rsyslogd running the receiver configuration this project ships.</summary>
public sealed class RelpTlsTests
{
    private const string Receiver = "syslog.test";
    private const string WorkerA = "worker-a.test";
    private const string WorkerB = "worker-b.test";

    private sealed class Pki : IDisposable
    {
        public Pki(TempDir dir)
        {
            Dir = dir;
            Ca = DevPki.Create("syslog test CA");
            Ca.WriteCa(dir.Path);
            Ca.IssueTo(dir.Path, Receiver, server: true);
            foreach (var n in new[] { WorkerA, WorkerB, "intruder.test" })
            {
                Ca.IssueTo(dir.Path, n);
            }
        }

        public TempDir Dir { get; }

        public DevPki Ca { get; }

        public RsyslogReceiver.Tls ReceiverTls(params string[] permitted) =>
            new(Dir["ca.pem"], Dir[Receiver + ".pem"], Dir[Receiver + ".key"], permitted);

        public string[] Client(string name) => ["--ca", Dir["ca.pem"], "--cert", Dir[name + ".pem"], "--key", Dir[name + ".key"], "--server-name", Receiver];

        public void Dispose() => Ca.Dispose();
    }

    private static Task<ProcessResult> Ship(params string[] args) =>
        Run.DotnetToolAsync("toolforge-log-shipper", ["ship", .. args], TimeSpan.FromMinutes(5));

    [Fact]
    public async Task EveryNumberedEntry_ArrivesExactlyOnce()
    {
        using var dir = new TempDir();
        using var pki = new Pki(dir);
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(pki.ReceiverTls(WorkerA, WorkerB));
        const int n = 20_000;
        var journal = await Numbered.WriteAsync(dir["n.journal"], n, host: "worker-a");
        var r = await Ship([.. journal, "--to", $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}", .. pki.Client(WorkerA), "--state-file", dir["state"]]);
        Assert.True(r.ExitCode == 0, r + rsyslog.Output);
        Assert.Contains($"read {n}, sent {n}, acknowledged {n}", r.Stdout, StringComparison.Ordinal);

        var received = Numbered.Received(rsyslog);
        Assert.Equal(n, received.Count);
        Assert.All(received, kv => Assert.Equal(1, kv.Value));
        Assert.All(rsyslog.Lines().Keys, f => Assert.StartsWith("127.0.0.1/", f, StringComparison.Ordinal)); // filed by the peer
    }

    /// <summary>
    /// The shipped receiver keeps a 64 KiB message whole (rsyslog's default of 8 KB cut a 200 KB message to 7,905
    /// characters with no marker, though RELP had acknowledged it), and a longer one arrives with the shipper's marker.
    /// </summary>
    [Fact]
    public async Task A64KiBMessage_ArrivesWhole_AndALongerOneWithTheMarker()
    {
        using var dir = new TempDir();
        using var pki = new Pki(dir);
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(pki.ReceiverTls(WorkerA));
        var exact = "E" + new string('x', 65_534) + "E"; // 65,536 bytes: MaxMessageBytes
        var longer = "L" + new string('y', 200_000) + "L";
        var now = DateTimeOffset.UtcNow;
        var journal = await JournalFiles.WriteAsync(dir["big.journal"],
        [
            JournalFiles.Entry(now.AddSeconds(-3), "worker-a", "big", exact),
            JournalFiles.Entry(now.AddSeconds(-2), "worker-a", "big", longer),
            JournalFiles.Entry(now.AddSeconds(-1), "worker-a", "big", "after the big ones"),
        ]);
        var r = await Ship([.. journal.SelectMany(f => new[] { "--journal-file", f }), "--to", $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}", .. pki.Client(WorkerA), "--state-file", dir["state"]]);
        Assert.True(r.ExitCode == 0, r + rsyslog.Output);
        Assert.True(await Peer.EventuallyAsync(() => rsyslog.Lines().Values.SelectMany(l => l).Any(l => l.Contains("after the big ones", StringComparison.Ordinal)), TimeSpan.FromSeconds(30)), rsyslog.Output);
        var lines = rsyslog.Lines().Values.SelectMany(l => l).ToList();
        Assert.Contains(lines, l => l.Contains(exact, StringComparison.Ordinal));
        var cut = Assert.Single(lines, l => l.Contains("Lyyyy", StringComparison.Ordinal));
        Assert.Contains("...[truncated", cut, StringComparison.Ordinal);
        Assert.DoesNotContain("yyyL", cut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReceiverSignedByAnotherCa_IsRefused_AndNothingIsWritten()
    {
        using var dir = new TempDir();
        using var pki = new Pki(dir);
        using var impostorDir = new TempDir();
        using var impostor = DevPki.Create("impostor CA");
        impostor.WriteCa(impostorDir.Path);
        impostor.IssueTo(impostorDir.Path, Receiver, server: true);
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(new RsyslogReceiver.Tls(
            dir["ca.pem"], impostorDir[Receiver + ".pem"], impostorDir[Receiver + ".key"], [WorkerA]));
        var journal = await Numbered.WriteAsync(dir["n.journal"], 50);

        var r = await Ship([.. journal, "--to", $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}", .. pki.Client(WorkerA), "--state-file", dir["state"], "--give-up-after", "3"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("TLS handshake refused", r.Stdout + r.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, rsyslog.Count());
        Assert.False(File.Exists(dir["state"]));
    }

    [Fact]
    public async Task AClientCertificateNotPermitted_IsRefused_AndNothingIsWritten()
    {
        using var dir = new TempDir();
        using var pki = new Pki(dir);
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(pki.ReceiverTls(WorkerA));
        var journal = await Numbered.WriteAsync(dir["n.journal"], 50);

        var r = await Ship([.. journal, "--to", $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}", .. pki.Client("intruder.test"), "--state-file", dir["state"], "--give-up-after", "3"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal(0, rsyslog.Count());
        Assert.False(File.Exists(dir["state"]));

        // The permitted one, same receiver: gets through.
        var ok = await Ship([.. journal, "--to", $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}", .. pki.Client(WorkerA), "--state-file", dir["state"]]);
        Assert.True(ok.ExitCode == 0, ok + rsyslog.Output);
        Assert.Equal(50, Numbered.Received(rsyslog).Count);
    }

    [Fact]
    public async Task ShipperKilledMidway_OverRelpTls_LosesNothing()
    {
        using var dir = new TempDir();
        using var pki = new Pki(dir);
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(pki.ReceiverTls(WorkerA));
        const int n = 100_000;
        var journal = await Numbered.WriteAsync(dir["n.journal"], n);
        string[] args = ["ship", .. journal, "--to", $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}", .. pki.Client(WorkerA), "--state-file", dir["state"]];
        var kills = 0;
        for (var round = 0; round < 3; round++)
        {
            await using var shipper = BackgroundProcess.StartTool("toolforge-log-shipper", args);
            var before = rsyslog.Count();
            // Kill once it is really shipping (the receiver's files grow), not while it is still starting.
            Assert.True(await Peer.EventuallyAsync(() => rsyslog.Count() > before + 1000 || shipper.HasExited, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100)), shipper.Output);
            if (!shipper.HasExited)
            {
                shipper.Signal(9);
                kills++;
            }
        }

        var last = await Run.DotnetToolAsync("toolforge-log-shipper", args, TimeSpan.FromMinutes(5));
        Assert.True(last.ExitCode == 0, last.ToString());
        var received = Numbered.Received(rsyslog);
        var missing = Enumerable.Range(0, n).Where(i => !received.ContainsKey(i)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} lost, first {string.Join(",", missing.Take(10))}");
        Assert.True(kills >= 1, "the shipper was never killed mid-way");
    }

    [Fact]
    public async Task TwoSendersOnDifferentAddresses_OneClaimingTheOthersName_AreFiledApart()
    {
        using var dir = new TempDir();
        using var pki = new Pki(dir);
        await using var central = await NetNamespace.CreateAsync();
        await using var a = await NetNamespace.CreateAsync();
        await using var b = await NetNamespace.CreateAsync();
        await central.LoopbackUpAsync();
        await central.LinkAsync(a, "10.201.1.1/24", "10.201.1.2/24");
        await central.LinkAsync(b, "10.201.2.1/24", "10.201.2.2/24");
        await a.RunAsync("ip", "route", "add", "default", "via", "10.201.1.1");
        await b.RunAsync("ip", "route", "add", "default", "via", "10.201.2.1");
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(pki.ReceiverTls(WorkerA, WorkerB), address: "0.0.0.0", inNamespace: central);

        // A writes as worker-a; B, compromised, also writes worker-a into HOSTNAME.
        var fromA = await Numbered.WriteAsync(dir["a.journal"], 40, host: "worker-a");
        var fromB = await Numbered.WriteAsync(dir["b.journal"], 40, host: "worker-a", startMicros: 1_760_000_000_000_000);
        foreach (var (ns, journal, cert, to) in new[] { (a, fromA, WorkerA, "10.201.1.1"), (b, fromB, WorkerB, "10.201.2.1") })
        {
            var r = await Run.ProcessAsync("ip", ns.Exec(["dotnet", Run.ToolPath("toolforge-log-shipper"), "ship", .. journal,
                "--to", $"relp+tls://{to}:{rsyslog.RelpTlsPort}", .. pki.Client(cert), "--state-file", dir[cert + ".state"]]), TimeSpan.FromMinutes(2));
            Assert.True(r.ExitCode == 0, r + rsyslog.Output);
        }

        var files = rsyslog.Lines();
        Assert.Equal(["10.201.1.2", "10.201.2.2"], files.Keys.Select(f => f.Split('/')[0]).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(40, files.Where(f => f.Key.StartsWith("10.201.1.2/", StringComparison.Ordinal)).Sum(f => f.Value.Count));
        Assert.Equal(40, files.Where(f => f.Key.StartsWith("10.201.2.2/", StringComparison.Ordinal)).Sum(f => f.Value.Count));
        Assert.DoesNotContain(files.Keys, f => f.StartsWith("worker-a", StringComparison.Ordinal));
        // The claimed name is still there to read, inside B's own directory.
        Assert.Contains(files.First(f => f.Key.StartsWith("10.201.2.2/", StringComparison.Ordinal)).Value, l => l.Contains("worker-a", StringComparison.Ordinal));
    }
}
