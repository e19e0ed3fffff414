using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// What the coordinator can know before it serves is a configuration problem: exit 78 (the unit does not restart on
/// it), one line naming the key and the reason, no stack trace — never exit 1 and a restart every 5 s for ever.
/// </summary>
public sealed class StartupProblemTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly DevPki _pki = DevPki.Create();
    private readonly (string Cert, string Key) _server;

    public StartupProblemTests()
    {
        _pki.WriteCa(_dir.Path);
        _server = _pki.IssueTo(_dir.Path, "coordinator.example", server: true);
    }

    public void Dispose()
    {
        _pki.Dispose();
        _dir.Dispose();
    }

    private JsonObject Config(Action<JsonObject> edit)
    {
        var c = new JsonObject
        {
            ["ListenAddress"] = "127.0.0.1", ["Port"] = 0, ["Certificate"] = _server.Cert, ["Key"] = _server.Key,
            ["CaBundle"] = Path.Combine(_dir.Path, "ca.pem"), ["Database"] = _dir["coordinator.db"],
        };
        edit(c);
        return new JsonObject { ["Coordinator"] = c, ["Metrics"] = new JsonObject { ["Port"] = 0 } };
    }

    private async Task AssertStopsWith(JsonObject config, string expected)
    {
        var path = _dir[$"config-{Guid.NewGuid():N}.json"];
        await File.WriteAllTextAsync(path, config.ToJsonString());
        var r = await Run.DotnetToolAsync("toolforge-coordinator", ["--config", path], TimeSpan.FromSeconds(30));
        var wrong = ConfigContract.OneConfigLine("toolforge-coordinator", r, expected);
        Assert.True(wrong is null, wrong);
    }

    [Fact]
    public async Task ACertificatePathHoldingAKey_IsNamed() =>
        await AssertStopsWith(Config(c => c["Certificate"] = _server.Key), "Coordinator:Certificate: " + _server.Key + " holds no PEM certificate (it holds a private key");

    [Fact]
    public async Task AKeyOfAnotherCertificate_IsNamed()
    {
        var other = _pki.IssueTo(_dir.Path, "other.example", server: true);
        await AssertStopsWith(Config(c => c["Key"] = other.Key), $"Coordinator:Key: {other.Key} is not the private key of {_server.Cert}");
    }

    [Fact]
    public async Task ACaBundleWithNoCertificate_IsNamed()
    {
        await File.WriteAllTextAsync(_dir["empty-ca.pem"], "not a certificate\n");
        await AssertStopsWith(Config(c => c["CaBundle"] = _dir["empty-ca.pem"]), "Coordinator:CaBundle: ");
    }

    [Fact]
    public async Task ADatabaseThatIsNotSqlite_IsNamed()
    {
        await File.WriteAllTextAsync(_dir["not.db"], new string('x', 4096));
        await AssertStopsWith(Config(c => c["Database"] = _dir["not.db"]), $"Coordinator:Database: cannot open {_dir["not.db"]} as a SQLite database");
    }

    [Fact]
    public async Task AMaximalInterval_IsRefused() =>
        await AssertStopsWith(Config(c => c["SweepInterval"] = "10675199.02:48:05.4775807"), "Coordinator:SweepInterval: must be at most 24.20:31:23");

    [Fact]
    public async Task APortInUse_IsNamed_ForGrpcAndForMetrics()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        await AssertStopsWith(Config(c => c["Port"] = port), "Coordinator:ListenAddress/Port: ");
        var config = Config(_ => { });
        config["Metrics"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = port };
        await AssertStopsWith(config, $"Metrics:Port: cannot serve /metrics on 127.0.0.1:{port}");
    }
}
