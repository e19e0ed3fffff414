using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>The log-shipper against a real rsyslogd and real journal files.</summary>
public sealed class ShipTests
{
    private static Task<ProcessResult> Ship(params string[] args) =>
        Run.DotnetToolAsync("toolforge-log-shipper", ["ship", .. args], TimeSpan.FromMinutes(10));

    [Theory]
    [InlineData("relp")]
    [InlineData("tcp")]
    public async Task HundredThousandEntries_ArriveInOrder_ExactlyOnce_WithTheirFields(string scheme)
    {
        await using var rsyslog = await RsyslogReceiver.StartAsync();
        using var dir = new TempDir();
        const int n = 100_000;
        var journal = await Numbered.WriteAsync(dir["n.journal"], n, multiLineEvery: 1000);
        var port = scheme == "relp" ? rsyslog.RelpPort : rsyslog.TcpPort;
        var r = await Ship([.. journal, "--to", $"{scheme}://127.0.0.1:{port}", "--state-file", dir["state"]]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"read {n}, sent {n}, acknowledged {n}", r.Stdout, StringComparison.Ordinal);
        Assert.True(await Peer.EventuallyAsync(() => rsyslog.Count() >= n, TimeSpan.FromSeconds(30)), $"received {rsyslog.Count()}");

        var files = rsyslog.Lines();
        Assert.Equal(Numbered.Apps.Select(a => $"worker-9/{a}.log").Order(StringComparer.Ordinal), files.Keys.Order(StringComparer.Ordinal));
        foreach (var (file, lines) in files)
        {
            var app = Path.GetFileNameWithoutExtension(file);
            var appIndex = Array.IndexOf(Numbered.Apps, app);
            var seqs = lines.Select(l => Numbered.SeqOf(l)!.Value).ToList();
            Assert.Equal(Enumerable.Range(0, n).Where(i => i % 4 == appIndex), seqs); // in order, each once
            foreach (var (line, seq) in lines.Zip(seqs).Take(50))
            {
                // facility 3 (daemon) * 8 + severity
                Assert.StartsWith($"worker-9 {app} {1000 + (seq % 4)} {(3 * 8) + (seq % 8)} seq={seq}", line, StringComparison.Ordinal);
            }
        }

        // A multi-line message stays one message (rsyslog shows the newline escaped as #012).
        Assert.Contains(files["worker-9/kubelet.log"], l => l.Contains("seq=1000 first line#012second line of 1000", StringComparison.Ordinal));

        // A restart resumes after the saved cursor: nothing is sent again.
        var again = await Ship([.. journal, "--to", $"{scheme}://127.0.0.1:{port}", "--state-file", dir["state"]]);
        Assert.Contains("read 0, sent 0", again.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Relp_ShipperKilledFiveTimes_ReceiverRestartedFiveTimes_EveryEntryArrives()
    {
        await using var rsyslog = await RsyslogReceiver.StartAsync();
        using var dir = new TempDir();
        const int n = 200_000;
        var files = await Numbered.WriteAsync(dir["n.journal"], n);
        string[] args = ["ship", .. files, "--to", $"relp://127.0.0.1:{rsyslog.RelpPort}", "--state-file", dir["state"], "--give-up-after", "120"];
        var rounds = 0;
        var log = new System.Text.StringBuilder();
        for (var round = 0; round < 5; round++)
        {
            await using var shipper = BackgroundProcess.StartTool("toolforge-log-shipper", args);
            await Task.Delay(700 + (round * 100));
            await rsyslog.RestartAsync(); // while the shipper ships: it reconnects and sends the unacknowledged window again
            await Task.Delay(300 + (round * 100));
            shipper.Signal(9); // SIGKILL mid-flight
            rounds++;
            log.Append(System.Globalization.CultureInfo.InvariantCulture, $"round {round}: received {rsyslog.Count()}, cursor {(File.Exists(dir["state"]) ? File.ReadAllText(dir["state"]) : "-")}, shipper: {shipper.Output.Split('\n').LastOrDefault(l => l.Length > 0)}\n");
        }

        var last = await Run.DotnetToolAsync("toolforge-log-shipper", args, TimeSpan.FromMinutes(5));
        Assert.True(last.ExitCode == 0, last.ToString());
        // rsyslog writes out its (disk-saved) queue after its restarts; give it the time.
        Dictionary<int, int> received = [];
        await Peer.EventuallyAsync(() => (received = Numbered.Received(rsyslog)).Count >= n, TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(1));
        var missing = Enumerable.Range(0, n).Where(i => !received.ContainsKey(i)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} entries lost, first {string.Join(",", missing.Take(10))}; files: {string.Join(", ", rsyslog.Lines().Select(kv => $"{kv.Key}={kv.Value.Count}"))}; last run: {last.Stdout}\n{log}");
        var duplicates = received.Values.Sum(c => c - 1);
        // Only what was unacknowledged (the 128-frame window) or acknowledged during one cursor save can arrive twice,
        // per interruption (10 of them).
        Assert.True(duplicates <= 10 * (128 + 1000), $"{duplicates} duplicates");
        Assert.Equal(5, rounds);
    }

    [Fact]
    public async Task CorruptedOrUnknownCursor_IsALogLineAndTheConfiguredChoice_NotACrash()
    {
        await using var rsyslog = await RsyslogReceiver.StartAsync();
        using var dir = new TempDir();
        var a = await Numbered.WriteAsync(dir["a.journal"], 10);
        await File.WriteAllTextAsync(dir["state"], "this is not a cursor \u0001");
        var r = await Ship([.. a, "--to", $"relp://127.0.0.1:{rsyslog.RelpPort}", "--state-file", dir["state"]]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("cannot use the saved cursor", r.Stderr + r.Stdout, StringComparison.Ordinal);
        Assert.Contains("read 10, sent 10, acknowledged 10", r.Stdout, StringComparison.Ordinal); // head: everything

        // A well-formed cursor of another journal: unknown here.
        var b = await Numbered.WriteAsync(dir["b.journal"], 5, host: "worker-b");
        var unknown = await Ship([.. b, "--to", $"relp://127.0.0.1:{rsyslog.RelpPort}", "--state-file", dir["state"]]);
        Assert.True(unknown.ExitCode == 0, unknown.ToString());
        Assert.Contains("no longer holds the saved entry", unknown.Stderr + unknown.Stdout, StringComparison.Ordinal);
        Assert.Contains("read 5, sent 5", unknown.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_AReceiverNotSignedByTheConfiguredCa_IsRefused_AndOneThatIs_GetsTheMessages()
    {
        using var dir = new TempDir();
        using var trusted = DevPki.Create("trusted CA");
        using var impostor = DevPki.Create("impostor CA");
        trusted.WriteCa(dir.Path);
        var t = await Numbered.WriteAsync(dir["t.journal"], 20);

        foreach (var (pki, expectOk) in new[] { (impostor, false), (trusted, true) })
        {
            using var serverCert = pki.Issue("localhost", server: true);
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var received = new MemoryStream();
            var server = Task.Run(async () =>
            {
                using var client = await listener.AcceptTcpClientAsync();
                await using var ssl = new SslStream(client.GetStream());
                try
                {
                    await ssl.AuthenticateAsServerAsync(serverCert);
                    await ssl.CopyToAsync(received);
                }
                catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
                {
                    // the client refused us
                }
            });
            File.Delete(dir["state"]);
            var r = await Ship([.. t, "--to", $"tls://127.0.0.1:{port}", "--state-file", dir["state"], "--ca", dir["ca.pem"], "--give-up-after", "3"]);
            await server.WaitAsync(TimeSpan.FromSeconds(20));
            if (expectOk)
            {
                Assert.True(r.ExitCode == 0, r.ToString());
                Assert.Equal(20, System.Text.Encoding.UTF8.GetString(received.ToArray()).Split("seq=").Length - 1);
            }
            else
            {
                Assert.Equal(1, r.ExitCode);
                Assert.Contains("TLS handshake refused", r.Stdout + r.Stderr, StringComparison.Ordinal);
                Assert.Equal(0, received.Length);
                Assert.False(File.Exists(dir["state"]));
            }
        }
    }

    [Fact]
    public async Task Filters_AndTheRateLimit_DoWhatTheConfigSays_AndDropsAreCounted()
    {
        await using var rsyslog = await RsyslogReceiver.StartAsync();
        using var dir = new TempDir();
        await Numbered.WriteAsync(dir["f.journal"], 4000, startMicros: DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000);
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["Log"] = new System.Text.Json.Nodes.JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["Port"] = 0 },
            ["Shipper"] = new System.Text.Json.Nodes.JsonObject
            {
                ["Destinations"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["Url"] = $"relp://127.0.0.1:{rsyslog.RelpPort}" }),
                ["JournalFiles"] = new System.Text.Json.Nodes.JsonArray(dir["f.journal"]),
                ["StateFile"] = dir["state"],
                ["StartAt"] = "head",
                ["Units"] = new System.Text.Json.Nodes.JsonArray("kubelet.service", "kube-proxy.service"),
                ["MaxPriority"] = 5,
                ["RateLimit"] = new System.Text.Json.Nodes.JsonObject { ["Burst"] = 100, ["Interval"] = "01:00:00" },
            },
        };
        await File.WriteAllTextAsync(dir["shipper.json"], config.ToJsonString());
        await using var daemon = BackgroundProcess.StartTool("toolforge-log-shipper", ["--config", dir["shipper.json"]]);
        // kubelet: i%4==0 (priority 0 or 4: all 1000 pass); kube-proxy: i%4==2 (priority 2 or 6: 500 pass). The limit keeps 100 of each.
        Assert.True(await Peer.EventuallyAsync(() => daemon.Output.Contains("rate limit dropped 1300 entries", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), daemon.Output);
        Assert.True(await Peer.EventuallyAsync(() => rsyslog.Count() >= 200, TimeSpan.FromSeconds(15)));
        await Task.Delay(500);
        var lines = rsyslog.Lines();
        Assert.Equal(["worker-9/kube-proxy.log", "worker-9/kubelet.log"], lines.Keys.Order(StringComparer.Ordinal));
        Assert.All(lines.Values, l => Assert.Equal(100, l.Count));
        Assert.All(lines.Values.SelectMany(l => l), l => Assert.True(Numbered.SeqOf(l)!.Value % 8 <= 5));
        Assert.Contains("kubelet.service=900", daemon.Output, StringComparison.Ordinal);
        Assert.Contains("kube-proxy.service=400", daemon.Output, StringComparison.Ordinal);
    }
}

/// <summary>Memory stays bounded while the receiver is down, and a stuck host shows in agentctl nodes.</summary>
public sealed class ShipperDaemonTests
{
    [Fact]
    public async Task ReceiverDown_MillionEntriesWaiting_RssStaysUnder100MB()
    {
        using var dir = new TempDir();
        var files = await Numbered.WriteAsync(dir["m.journal"], 1_000_000);
        var closed = Peer.FreePort();
        await using var ship = BackgroundProcess.StartTool("toolforge-log-shipper", ["ship", .. files, "--to", $"relp://127.0.0.1:{closed}", "--state-file", dir["state"], "--give-up-after", "15"]);
        long peakKb = 0;
        var sw = Stopwatch.StartNew();
        while (!ship.HasExited && sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                var rss = File.ReadAllLines($"/proc/{ship.Pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                if (rss is not null)
                {
                    peakKb = Math.Max(peakKb, long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture));
                }
            }
            catch (IOException)
            {
                break; // exited meanwhile
            }

            await Task.Delay(200);
        }

        Assert.True(ship.HasExited, "ship did not give up");
        Assert.Equal(1, ship.ExitCode);
        Assert.False(File.Exists(dir["state"])); // nothing delivered, nothing saved
        Assert.True(peakKb > 0 && peakKb < 100 * 1024, $"peak RSS {peakKb / 1024} MB");
    }

    [Fact]
    public async Task StuckShipping_ShowsInAgentctlNodes()
    {
        const string node = "logs-1.example";
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var dir = new TempDir();
        var files = await Numbered.WriteAsync(dir["old.journal"], 50, host: node, startMicros: DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds() * 1000);
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["Log"] = new System.Text.Json.Nodes.JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["Port"] = 0 },
            ["Coordinator"] = coordinator.AgentSection(node),
            ["Shipper"] = new System.Text.Json.Nodes.JsonObject
            {
                ["Destinations"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["Url"] = $"relp://127.0.0.1:{Peer.FreePort()}" }),
                ["JournalFiles"] = new System.Text.Json.Nodes.JsonArray(files.Where(f => f != "--journal-file").Select(f => (System.Text.Json.Nodes.JsonNode)f).ToArray()),
                ["StateFile"] = dir["state"],
                ["StartAt"] = "head",
            },
        };
        await File.WriteAllTextAsync(dir["shipper.json"], config.ToJsonString());
        await using var daemon = BackgroundProcess.StartTool("toolforge-log-shipper", ["--config", dir["shipper.json"]]);
        string line = string.Empty;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes").GetAwaiter().GetResult();
            line = r.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(node, StringComparison.Ordinal)) ?? string.Empty;
            return line.Contains("failing", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(1)), "node line: " + line + "\n" + daemon.Output);
        Assert.Contains("shipper.delivery: stuck", line, StringComparison.Ordinal);
    }
}
