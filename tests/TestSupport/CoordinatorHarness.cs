using Toolforge.Agents.Coordinator.Hosting;
using System.Text.Json.Nodes;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A real coordinator (Kestrel on 127.0.0.1, HTTP/2 over mutual TLS, SQLite in a temp dir) with a throwaway CA,
/// started in this process so a test can inject a <see cref="FakeTimeProvider"/>.
/// </summary>
public sealed class CoordinatorHarness : IAsyncDisposable
{
    public const string Admin = "admin1.example";
    public const string Viewer = "viewer1.example";
    public const string Viewer2 = "viewer2.example";
    public const string Builder = "builder1.example";
    public const string Builder2 = "builder2.example";

    private readonly bool _ownsDir;
    private readonly string _configName;
    private WebApplication? _app;
    private static int _siblings;
    private BackgroundProcess? _process;

    private CoordinatorHarness(TempDir dir, bool ownsDir, DevPki pki, FakeTimeProvider? time, string configName = "coordinator.json")
    {
        Dir = dir;
        _ownsDir = ownsDir;
        _configName = configName;
        Pki = pki;
        Time = time;
    }

    public TempDir Dir { get; }

    public DevPki Pki { get; }

    public FakeTimeProvider? Time { get; }

    public int Port { get; private set; }

    public string Address => $"https://127.0.0.1:{Port}";

    public string CertDir => Dir["certs"];

    public string CaPath => Path.Combine(CertDir, "ca.pem");

    public string ConfigPath => Dir[_configName];

    public string DatabasePath => Dir["coordinator.db"];

    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("not running");

    /// <summary>The coordinator as its own process (to send it signals), or null when it runs in this one.</summary>
    public BackgroundProcess? Process => _process;

    public JsonObject Config { get; private set; } = [];

    /// <summary>
    /// Starts a coordinator: in this process (a test may then give it a fake clock), or with
    /// <paramref name="asProcess"/> as the real toolforge-coordinator program.
    /// </summary>
    public static async Task<CoordinatorHarness> StartAsync(bool fakeTime = false, Action<JsonObject>? editConfig = null, bool asProcess = false, NetNamespace? netns = null)
    {
        asProcess |= netns is not null;
        var dir = new TempDir("coordinator");
        Directory.CreateDirectory(dir["certs"]);
        var pki = DevPki.Create();
        pki.WriteCa(dir["certs"]);
        pki.IssueTo(dir["certs"], "coordinator", server: true);
        var time = fakeTime ? new FakeTimeProvider(DateTimeOffset.UtcNow) : null;
        var h = new CoordinatorHarness(dir, ownsDir: true, pki, time);
        var config = new JsonObject
        {
            ["Log"] = asProcess ? new JsonObject { ["Level"] = "Information", ["Console"] = "plain" } : new JsonObject { ["Level"] = "Warning", ["Console"] = "none" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Coordinator"] = new JsonObject
            {
                ["ListenAddress"] = "127.0.0.1",
                ["Port"] = asProcess ? Peer.FreePort() : 0,
                ["Certificate"] = Path.Combine(h.CertDir, "coordinator.pem"),
                ["Key"] = Path.Combine(h.CertDir, "coordinator.key"),
                ["CaBundle"] = h.CaPath,
                ["Database"] = h.DatabasePath,
                ["Admins"] = new JsonArray(Admin),
                ["Viewers"] = new JsonArray(Viewer, Viewer2),
                ["Builders"] = new JsonArray(Builder, Builder2),
                ["HeartbeatInterval"] = "00:00:30",
            },
        };
        editConfig?.Invoke(config);
        h.Config = config;
        await File.WriteAllTextAsync(h.ConfigPath, config.ToJsonString());
        h.Netns = netns;
        await h.LaunchAsync(asProcess || netns is not null);
        return h;
    }

    /// <summary>
    /// Another instance of the same cluster: the same CA, certificates and configuration (so the same store, which
    /// must then be PostgreSQL), its own port and config file; in this process, or as its own program.
    /// </summary>
    public async Task<CoordinatorHarness> StartSiblingAsync(bool asProcess = false, Action<JsonObject>? edit = null, NetNamespace? netns = null)
    {
        asProcess |= netns is not null;
        var n = Interlocked.Increment(ref _siblings);
        var h = new CoordinatorHarness(Dir, ownsDir: false, Pki, time: null, $"coordinator-{n}.json") { _ownsPki = false };
        var config = JsonNode.Parse(Config.ToJsonString())!.AsObject();
        config["Coordinator"]!["Port"] = asProcess ? Peer.FreePort() : 0;
        config["Log"] = asProcess ? new JsonObject { ["Level"] = "Information", ["Console"] = "plain" } : new JsonObject { ["Level"] = "Warning", ["Console"] = "none" };
        edit?.Invoke(config);
        h.Config = config;
        h.Netns = netns;
        await File.WriteAllTextAsync(h.ConfigPath, config.ToJsonString());
        await h.LaunchAsync(asProcess || netns is not null);
        return h;
    }

    /// <summary>A configuration edit: the store is database <paramref name="database"/> of <paramref name="pg"/>.</summary>
    public static Action<JsonObject> OnPostgres(PrivatePostgres pg, string database, string? connectionString = null) => c =>
    {
        c["Coordinator"]!["Store"] = "postgresql";
        c["Coordinator"]!["PostgreSql"] = new JsonObject
        {
            ["ConnectionString"] = connectionString ?? pg.ConnectionString(database),
            ["PasswordFile"] = pg.PasswordFile,
            ["CommandTimeoutSeconds"] = 5,
        };
        c["Coordinator"]!["SweepInterval"] = "00:00:00.250";
    };

    /// <summary>Starts this instance again (after a stop): in this process, or as a program on its port.</summary>
    public async Task LaunchAsync(bool asProcess)
    {
        if (Netns is not null)
        {
            // Inside the test's network namespace: only its programs reach it (ip netns exec execs the program itself).
            Port = (int)Config["Coordinator"]!["Port"]!;
            _process = BackgroundProcess.Start("ip", Netns.Exec([.. Run.ToolCommand("toolforge-coordinator"), "--config", ConfigPath]));
            if (!await _process.WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60)))
            {
                throw new InvalidOperationException($"the coordinator in {Netns.Name} did not start: {_process.Output}");
            }
        }
        else if (asProcess)
        {
            Port = (int)Config["Coordinator"]!["Port"]!;
            _process = BackgroundProcess.StartTool("toolforge-coordinator", ["--config", ConfigPath]);
            await Peer.WaitForTcpAsync(Port, TimeSpan.FromSeconds(60));
        }
        else
        {
            await StartAppAsync();
        }
    }

    private bool _ownsPki = true;

    /// <summary>The network namespace the coordinator process runs in, or null for the test's own.</summary>
    public NetNamespace? Netns { get; private set; }

    /// <summary>Rewrites the configuration file (a running coordinator reads it again on SIGHUP).</summary>
    public async Task EditConfigAsync(Action<JsonObject> edit)
    {
        edit(Config);
        await File.WriteAllTextAsync(ConfigPath, Config.ToJsonString());
    }

    private async Task StartAppAsync()
    {
        _app = CoordinatorApp.Build(ConfigPath, services =>
        {
            if (Time is not null)
            {
                services.AddSingleton<TimeProvider>(Time);
            }
        });
        await _app.StartAsync();
        Port = CoordinatorApp.BoundPort(_app);
    }

    public async Task StopAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }

        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    /// <summary>Stops the coordinator and starts a new one on the same database (a new port).</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAppAsync();
    }

    /// <summary>Certificate and key paths for <paramref name="name"/>, issued by this harness's CA (once).</summary>
    public (string Cert, string Key) Issue(string name)
    {
        var cert = Path.Combine(CertDir, name + ".pem");
        var key = Path.Combine(CertDir, name + ".key");
        if (!File.Exists(cert))
        {
            Pki.IssueTo(CertDir, name);
        }

        return (cert, key);
    }

    public GrpcChannel Channel(string identity)
    {
        var (cert, key) = Issue(identity);
        return CoordinatorChannel.Create(Address, cert, key, CaPath, TimeSpan.FromSeconds(5));
    }

    /// <summary>An odd certificate made by <paramref name="make"/> with this harness's CA, written as FILE.pem/FILE.key.</summary>
    public (string Cert, string Key) IssueWith(string file, Func<DevPki, System.Security.Cryptography.X509Certificates.X509Certificate2> make) =>
        DevPki.WriteTo(CertDir, file, make(Pki));

    public GrpcChannel Channel((string Cert, string Key) files) =>
        CoordinatorChannel.Create(Address, files.Cert, files.Key, CaPath, TimeSpan.FromSeconds(5));

    public AgentService.AgentServiceClient AgentClient(string identity) => new(Channel(identity));

    public AdminService.AdminServiceClient AdminClient(string identity) => new(Channel(identity));

    /// <summary>agentctl's connection flags for <paramref name="identity"/> against this coordinator (for an agentctl the test starts itself).</summary>
    public string[] AgentCtlArgs(string identity)
    {
        var (cert, key) = Issue(identity);
        return ["--server", Address, "--cert", cert, "--key", key, "--ca", CaPath, "--timeout", "5"];
    }

    /// <summary>Runs agentctl (as a process) as <paramref name="identity"/> against this coordinator.</summary>
    public Task<ProcessResult> AgentCtlAsync(string identity, params string[] args)
    {
        var (cert, key) = Issue(identity);
        return Run.DotnetToolAsync("agentctl", [.. args, "--server", Address, "--cert", cert, "--key", key, "--ca", CaPath],
            TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["NO_COLOR"] = "1" });
    }

    /// <summary>A "Coordinator" section for an agent's config, reporting as <paramref name="identity"/>.</summary>
    public JsonObject AgentSection(string identity)
    {
        var (cert, key) = Issue(identity);
        return new JsonObject
        {
            ["Address"] = Address,
            ["Certificate"] = cert,
            ["Key"] = key,
            ["CaBundle"] = CaPath,
            ["CallTimeout"] = "00:00:05",
        };
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsPki)
        {
            Pki.Dispose();
        }

        if (_ownsDir)
        {
            Dir.Dispose();
        }
    }
}
