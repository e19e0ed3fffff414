using System.Text.Json.Nodes;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>
/// A daemon whose reports the coordinator refuses at the TLS level says the real cause in its log line, naming its
/// configuration key (not gRPC's "The response ended prematurely" or "Error starting gRPC call"): its client certificate
/// refused, the coordinator's certificate not signed by the CA in Coordinator:CaBundle, a port that does not speak TLS.
/// The shipper is the daemon run here; every agent reports through the same ReportingService.
/// </summary>
public sealed class ReportingTlsTests
{
    private const string Node = "logs-2.example";

    private static async Task<string> FirstReportFailureAsync(TempDir dir, JsonObject coordinator)
    {
        var files = await Numbered.WriteAsync(dir["host.journal"], 5, host: Node);
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Coordinator"] = coordinator,
            ["Shipper"] = new JsonObject
            {
                ["Destinations"] = new JsonArray(new JsonObject { ["Url"] = $"relp://127.0.0.1:{Peer.FreePort()}" }),
                ["JournalFiles"] = new JsonArray(files.Where(f => f != "--journal-file").Select(f => (JsonNode)f).ToArray()),
                ["StateFile"] = dir["state"],
                ["StartAt"] = "head",
            },
        };
        await File.WriteAllTextAsync(dir["shipper.json"], config.ToJsonString());
        await using var daemon = BackgroundProcess.StartTool("toolforge-log-shipper", ["--config", dir["shipper.json"]], new Dictionary<string, string> { ["JOURNAL_STREAM"] = string.Empty });
        Assert.True(await daemon.WaitForOutputAsync("[1203]", TimeSpan.FromSeconds(60)), daemon.Output);
        var line = daemon.Output.Split('\n').First(l => l.Contains("[1203]", StringComparison.Ordinal));
        Assert.DoesNotContain("ended prematurely", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Error starting gRPC call", line, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
        return line;
    }

    [Fact]
    public async Task AClientCertificateFromAnotherCa_IsLoggedAsRefused_NamingTheKey()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        using var dir = new TempDir();
        using var other = DevPki.Create("some other CA");
        var (cert, key) = other.IssueTo(dir.Path, Node);
        var section = h.AgentSection(Node);
        section["Certificate"] = cert;
        section["Key"] = key;
        var line = await FirstReportFailureAsync(dir, section);
        // Said for certain when the refusal reaches the client as TLS alert or a torn-down stream; as "most likely" when it
        // arrives as a connection closed right after the handshake (which a restart also looks like): both name the key.
        Assert.Contains("refused our client certificate (Coordinator:Certificate", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACoordinatorCertificateNotFromOurCa_IsLoggedAsNotTrusted_NamingTheKey()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        using var dir = new TempDir();
        using var other = DevPki.Create("impostor CA");
        other.WriteCa(dir["other"]);
        var section = h.AgentSection(Node);
        section["CaBundle"] = Path.Combine(dir["other"], "ca.pem");
        var line = await FirstReportFailureAsync(dir, section);
        Assert.Contains("is not trusted: not signed by the CA in Coordinator:CaBundle", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APortThatDoesNotSpeakTls_IsCalledSo()
    {
        using var plain = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        plain.Start();
        var port = ((System.Net.IPEndPoint)plain.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var answer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var c = await plain.AcceptTcpClientAsync(stop.Token);
                await c.GetStream().WriteAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"u8.ToArray(), stop.Token);
            }
        });
        await using var h = await CoordinatorHarness.StartAsync();
        using var dir = new TempDir();
        var section = h.AgentSection(Node);
        section["Address"] = $"https://127.0.0.1:{port}";
        var line = await FirstReportFailureAsync(dir, section);
        Assert.Contains("does not speak TLS (is Coordinator:Address the coordinator's port?)", line, StringComparison.Ordinal);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => answer);
    }
}
