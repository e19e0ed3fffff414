using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// An instance whose listening connection broke reads the whole store again when it is back: what was forgotten or
/// deleted meanwhile (whose notifications it could not hear) goes from its view too, not only what was added.
/// </summary>
public sealed class ResyncTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task After_the_listener_reconnects_nodes_forgotten_and_builds_deleted_meanwhile_are_gone_from_every_instance()
    {
        var db = "rs" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        await using var b = await a.StartSiblingAsync();
        const string gone = "tools-k8s-worker-gone";
        const string kept = "tools-k8s-worker-kept";
        foreach (var node in new[] { gone, kept })
        {
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
            r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = "up" });
            await a.AgentClient(node).ReportAsync(r);
        }

        var deleted = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "gone/base" } } });
        var other = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "kept/base" } } });
        Assert.True(await Peer.EventuallyAsync(() => b.AdminClient(CoordinatorHarness.Viewer).ListNodes(new ListNodesRequest()).Nodes.Count == 2
            && b.AdminClient(CoordinatorHarness.Viewer).ListBuilds(new ListBuildsRequest()).Builds.Count == 2, TimeSpan.FromSeconds(10)));

        // Meanwhile, with no notification any instance hears (as if sent while their listening connections were down):
        // the node forgotten and the build deleted. Then every listening connection breaks.
        await using (var c = await pg.Server.OpenAsync(db))
        {
            await using var cmd = new Npgsql.NpgsqlCommand($"DELETE FROM nodes WHERE name = '{gone}'; DELETE FROM builds WHERE id = {deleted.Id}", c);
            await cmd.ExecuteNonQueryAsync();
        }

        Assert.Equal(2, await pg.Server.ScalarAsync(
            $"SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}' AND query LIKE 'LISTEN %'", db));

        foreach (var h in new[] { a, b })
        {
            var viewer = h.AdminClient(CoordinatorHarness.Viewer);
            Assert.True(await Peer.EventuallyAsync(() => viewer.ListNodes(new ListNodesRequest()).Nodes.Select(n => n.Name).SequenceEqual([kept])
                && viewer.ListBuilds(new ListBuildsRequest()).Builds.Select(x => x.Id).SequenceEqual([other.Id]), TimeSpan.FromSeconds(15)),
                $"instance on port {h.Port} still shows what was deleted meanwhile");
            var missing = Assert.Throws<RpcException>(() => viewer.GetBuild(new GetBuildRequest { Id = deleted.Id }));
            Assert.Equal(StatusCode.NotFound, missing.StatusCode);
            Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => viewer.GetNode(new GetNodeRequest { Name = gone })).StatusCode);
        }
    }
}
