using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Cluster;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// An instance whose listening connection broke reads, when it is back, what changed since the last change it is sure
/// to have taken in (issue 28: not the whole store): what was forgotten or deleted meanwhile (whose notifications it
/// could not hear) goes from its view too, what changed is taken in, and only that is read; when those changes are no
/// longer kept (compacted), it reads the whole store.
/// </summary>
/// <remarks>
/// A commit whose notification an instance did not hear is made here as the coordinator's own write path makes it (the
/// rows and <see cref="ChangeLog.Record"/>, in one transaction) without its pg_notify; it is made while another
/// transaction, begun before the listeners last resynced, is still open, so every listener's mark (the oldest
/// transaction a snapshot saw running) is at or below it, as it is for a commit made while a listener is away.
/// </remarks>
public sealed class ResyncTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task After_the_listener_reconnects_nodes_forgotten_and_builds_deleted_meanwhile_are_gone_from_every_instance_and_only_they_are_read()
    {
        var db = "rs" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        await using var b = await a.StartSiblingAsync();
        const string gone = "tools-k8s-worker-gone";
        const string kept = "tools-k8s-worker-kept";
        foreach (var node in new[] { gone, kept })
        {
            await a.AgentClient(node).ReportAsync(Report(node, "up"));
        }

        var deleted = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "gone/base" } } });
        var other = await a.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "kept/base" } } });
        Assert.True(await Peer.EventuallyAsync(() => b.AdminClient(CoordinatorHarness.Viewer).ListNodes(new ListNodesRequest()).Nodes.Count == 2
            && b.AdminClient(CoordinatorHarness.Viewer).ListBuilds(new ListBuildsRequest()).Builds.Count == 2, TimeSpan.FromSeconds(10)));

        await using (var held = await HoldMarksAsync(db, a, b))
        {
            // Meanwhile, with no notification any instance hears: the node forgotten and the build deleted.
            await CommitUnheardAsync(db, $"DELETE FROM nodes WHERE name = '{gone}'; DELETE FROM builds WHERE id = {deleted.Id}", ("n", gone), ("b", deleted.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            await ReconnectListenersAsync(db, a, b);
        }

        foreach (var h in new[] { a, b })
        {
            var viewer = h.AdminClient(CoordinatorHarness.Viewer);
            Assert.Equal([kept], viewer.ListNodes(new ListNodesRequest()).Nodes.Select(n => n.Name));
            Assert.Equal([other.Id], viewer.ListBuilds(new ListBuildsRequest()).Builds.Select(x => x.Id));
            var missing = Assert.Throws<RpcException>(() => viewer.GetBuild(new GetBuildRequest { Id = deleted.Id }));
            Assert.Equal(StatusCode.NotFound, missing.StatusCode);
            Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => viewer.GetNode(new GetNodeRequest { Name = gone })).StatusCode);

            // Only what changed was read: the node and the build named, not the whole store.
            var read = Listener(h).LastResync!;
            Assert.False(read.Whole);
            Assert.Equal((1, 1), (read.Nodes, read.Builds));
        }
    }

    [Fact]
    public async Task Of_fifty_nodes_the_five_that_changed_meanwhile_are_read_and_taken_in_and_a_compacted_mark_reads_the_whole_store()
    {
        var db = "rs" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        await using var b = await a.StartSiblingAsync();
        var nodes = Enumerable.Range(0, 50).Select(i => $"tools-k8s-worker-{i:D2}").ToList();
        foreach (var node in nodes)
        {
            await a.AgentClient(node).ReportAsync(Report(node, "up"));
        }

        var viewer = b.AdminClient(CoordinatorHarness.Viewer);
        Assert.True(await Peer.EventuallyAsync(() => viewer.ListNodes(new ListNodesRequest()).Nodes.Count == 50, TimeSpan.FromSeconds(10)));
        var changed = nodes.Take(5).ToList();
        await using (var held = await HoldMarksAsync(db, b))
        {
            // Five reports whose notifications b does not hear: stored with their change rows, no pg_notify.
            foreach (var node in changed)
            {
                await CommitUnheardAsync(db, $"UPDATE agents SET version = '2.0.0' WHERE node = '{node}'", ("n", node));
            }

            await ReconnectListenersAsync(db, b);
            var read = Listener(b).LastResync!;
            Assert.False(read.Whole);
            Assert.Equal(5, read.Nodes);
        }

        Assert.Equal(changed, viewer.ListNodes(new ListNodesRequest()).Nodes.Where(n => n.Agents.Any(x => x.Version == "2.0.0")).Select(n => n.Name));

        // The sweeper compacted changes past b's mark: b cannot read from it and reads the whole store, and says so.
        await using (var c = await pg.Server.OpenAsync(db))
        {
            await using var cmd = new NpgsqlCommand("UPDATE changes_compacted SET below = pg_current_xact_id()::text::bigint + 1000000", c);
            await cmd.ExecuteNonQueryAsync();
        }

        await ReconnectListenersAsync(db, b);
        var whole = Listener(b).LastResync!;
        Assert.True(whole.Whole);
        Assert.Equal(50, whole.Nodes);
        Assert.Equal(50, viewer.ListNodes(new ListNodesRequest()).Nodes.Count);
    }

    [Fact]
    public async Task While_listening_the_mark_moves_past_what_was_heard_so_a_resync_reads_nothing_already_taken_in()
    {
        var db = "rs" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
        await using var b = await a.StartSiblingAsync();
        foreach (var node in Enumerable.Range(0, 30).Select(i => $"tools-k8s-worker-{i:D2}"))
        {
            await a.AgentClient(node).ReportAsync(Report(node, "up"));
        }

        var viewer = b.AdminClient(CoordinatorHarness.Viewer);
        Assert.True(await Peer.EventuallyAsync(() => viewer.ListNodes(new ListNodesRequest()).Nodes.Count == 30, TimeSpan.FromSeconds(10)));

        // Every transaction so far has ended: the database's mark now is above all 30. One more report is heard after
        // it, and the mark b takes after hearing it is at least that.
        var now = await pg.Server.ScalarAsync(ChangeLog.MarkQuery, db);
        await a.AgentClient("tools-k8s-worker-00").ReportAsync(Report("tools-k8s-worker-00", "still up"));
        var listener = Listener(b);
        Assert.True(await Peer.EventuallyAsync(() => listener.Mark >= now, TimeSpan.FromSeconds(10)), $"b's mark stayed at {listener.Mark}, below {now}");

        await ReconnectListenersAsync(db, b);
        var read = listener.LastResync!;
        Assert.False(read.Whole);
        Assert.Equal((0, 0), (read.Nodes, read.Builds));
        Assert.Equal(30, viewer.ListNodes(new ListNodesRequest()).Nodes.Count);
    }

    [Fact]
    public void The_sweeper_compacts_only_tombstones_older_than_the_cutoff_and_keeps_the_highest_transaction_id_compacted()
    {
        using var store = new PostgresStore(pg.Server.ConnectionString(NewDatabase()), PrivatePostgres.Password, 10, "test");
        store.Migrate();
        store.Commit([Saved("kept"), Saved("gone")]);
        store.Commit([new ForgetNodes(["gone"])]);
        var goneXid = Scalar(store, "SELECT xid FROM changes WHERE kind = 'n' AND key = 'gone'");

        // A cutoff before the tombstone: nothing compacted.
        store.Commit([new DeleteHistoryBefore(0)]);
        Assert.Equal(2, Scalar(store, "SELECT COUNT(*) FROM changes"));
        Assert.Equal(0, Scalar(store, "SELECT below FROM changes_compacted"));

        // A cutoff after it: the tombstone goes, the node still there keeps its row, and the horizon is the tombstone's.
        store.Commit([new DeleteHistoryBefore(long.MaxValue)]);
        Assert.Equal(1, Scalar(store, "SELECT COUNT(*) FROM changes WHERE kind = 'n' AND key = 'kept'"));
        Assert.Equal(0, Scalar(store, "SELECT COUNT(*) FROM changes WHERE key = 'gone'"));
        Assert.Equal(goneXid, Scalar(store, "SELECT below FROM changes_compacted"));
        Assert.Null(store.LoadChanges(goneXid, 10)); // at or below it: only the whole store
        Assert.NotNull(store.LoadChanges(goneXid + 1, 10));
    }

    private string NewDatabase()
    {
        var db = "rs" + Guid.NewGuid().ToString("N")[..10];
        pg.Server.CreateDatabaseAsync(db).GetAwaiter().GetResult();
        return db;
    }

    private static SaveReport Saved(string node) => new(node, 1, 1, "1.0.0", 1, 30_000, [], [], [], [], null);

    private static long Scalar(PostgresStore store, string sql)
    {
        using var c = store.OpenDedicated();
        using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static ReportRequest Report(string node, string message)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = message });
        return r;
    }

    private static ChangeListener Listener(CoordinatorHarness h) => h.Services.GetServices<IHostedService>().OfType<ChangeListener>().Single();

    /// <summary>
    /// A transaction held open from before the listeners' next resync, so their marks stay at or below it; the
    /// listeners reconnect once under it (their marks are then taken while it runs).
    /// </summary>
    private async Task<IAsyncDisposable> HoldMarksAsync(string db, params CoordinatorHarness[] instances)
    {
        var c = await pg.Server.OpenAsync(db);
        var tx = await c.BeginTransactionAsync();
        await using (var xid = new NpgsqlCommand("SELECT pg_current_xact_id()", c, tx))
        {
            await xid.ExecuteScalarAsync(); // an id now: every snapshot from here on sees it running
        }

        await ReconnectListenersAsync(db, instances);
        return new Held(c, tx);
    }

    private sealed class Held(NpgsqlConnection c, NpgsqlTransaction tx) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await tx.RollbackAsync();
            await c.DisposeAsync();
        }
    }

    /// <summary>A commit as the coordinator makes one (the rows and their change rows), without pg_notify.</summary>
    private async Task CommitUnheardAsync(string db, string sql, params (string Kind, string Key)[] changes)
    {
        await using var c = await pg.Server.OpenAsync(db);
        await using var tx = await c.BeginTransactionAsync();
        await using (var cmd = new NpgsqlCommand(sql, c, tx))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        foreach (var (kind, key) in changes)
        {
            await using var record = new NpgsqlCommand(ChangeLog.Record, c, tx);
            record.Parameters.Add(new NpgsqlParameter { Value = kind });
            record.Parameters.Add(new NpgsqlParameter { Value = key });
            await record.ExecuteNonQueryAsync();
        }

        await tx.CommitAsync();
    }

    /// <summary>Breaks every instance's listening session and waits until each has read the store again.</summary>
    private async Task ReconnectListenersAsync(string db, params CoordinatorHarness[] instances)
    {
        var before = instances.Select(h => Listener(h).ResyncCount).ToList();
        Assert.InRange(await pg.Server.ScalarAsync(
            $"SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = '{PostgresStore.ListenerApplicationName}'", db), instances.Length, 10);
        for (var i = 0; i < instances.Length; i++)
        {
            var listener = Listener(instances[i]);
            var was = before[i];
            Assert.True(await Peer.EventuallyAsync(() => listener.ResyncCount > was, TimeSpan.FromSeconds(15)), $"instance on port {instances[i].Port} did not read the store again");
        }
    }
}
