using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Common.Reporting;

namespace Toolforge.Agents.TestSupport;

/// <summary>Three coordinator processes on one database and haproxy in front (the shipped example config).</summary>
public sealed class CoordinatorCluster : IAsyncDisposable
{
    private readonly List<(int Port, int AgentPort)> _ports;

    private CoordinatorCluster(CoordinatorHarness first, PrivateHaproxy haproxy, string database, List<(int, int)> ports)
    {
        First = first;
        Haproxy = haproxy;
        Database = database;
        _ports = ports;
        All = [first];
    }

    public CoordinatorHarness First { get; }

    public List<CoordinatorHarness> All { get; }

    public PrivateHaproxy Haproxy { get; }

    public string Database { get; }

    /// <summary>The first instance alone (haproxy already knows all three; the others are DOWN until started).</summary>
    public static async Task<CoordinatorCluster> StartFirstAsync(PrivatePostgres pg, Func<string, string>? connectionString = null, Action<System.Text.Json.Nodes.JsonObject>? edit = null)
    {
        var db = "ha" + Guid.NewGuid().ToString("N")[..10];
        await pg.CreateDatabaseAsync(db);
        var ports = Enumerable.Range(0, 3).Select(_ => (Peer.FreePort(), Peer.FreePort())).ToList();
        var first = await CoordinatorHarness.StartAsync(asProcess: true, editConfig: c =>
        {
            CoordinatorHarness.OnPostgres(pg, db, connectionString?.Invoke(db))(c);
            c["Coordinator"]!["Port"] = ports[0].Item1;
            c["Coordinator"]!["HealthAgentPort"] = ports[0].Item2;
            // The simulated agents report every 2 s; stale after 3 heartbeats = 18 s of silence (production: 30 s
            // heartbeats, stale after 90 s). Failover measured 2.4–2.6 s alone, up to 11.7 s with CI's other tests.
            c["Coordinator"]!["HeartbeatInterval"] = "00:00:06";
            edit?.Invoke(c);
        });
        try
        {
            var haproxy = await PrivateHaproxy.StartAsync(ports);
            // haproxy starts every server UP until its first check: "coordinator1 UP" alone is true at once, while a
            // connection may still go to the two instances not started yet (refused, retried, redispatched to another
            // dead one: the client saw EOF in its TLS handshake, HaClusterTests' flake). Wait until their first checks
            // took them out.
            await haproxy.WaitForAsync(["coordinator1"], TimeSpan.FromSeconds(20), othersDown: true);
            return new CoordinatorCluster(first, haproxy, db, ports);
        }
        catch
        {
            await first.DisposeAsync();
            throw;
        }
    }

    public async Task StartOthersAsync()
    {
        for (var i = 1; i < 3; i++)
        {
            var (port, agentPort) = _ports[i];
            All.Add(await First.StartSiblingAsync(asProcess: true, edit: c =>
            {
                c["Coordinator"]!["Port"] = port;
                c["Coordinator"]!["HealthAgentPort"] = agentPort;
            }));
        }

        await Haproxy.WaitForAsync(["coordinator1", "coordinator2", "coordinator3"], TimeSpan.FromSeconds(30));
    }

    public AdminService.AdminServiceClient Admin(string identity)
    {
        var (cert, key) = First.Issue(identity);
        return new(CoordinatorChannel.Create(Haproxy.Address, cert, key, First.CaPath, TimeSpan.FromSeconds(5)));
    }

    public string[] AgentCtlArgs(string identity)
    {
        var (cert, key) = First.Issue(identity);
        return ["--server", Haproxy.Address, "--cert", cert, "--key", key, "--ca", First.CaPath, "--timeout", "5"];
    }

    public async ValueTask DisposeAsync()
    {
        await Haproxy.DisposeAsync();
        foreach (var h in All.AsEnumerable().Reverse())
        {
            await h.DisposeAsync();
        }
    }
}

