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

        // One more report, heard by b: the mark b takes after hearing it is above that report's transaction, and so
        // above all 31 (a mark taken before it came would be at or below it).
        await a.AgentClient("tools-k8s-worker-00").ReportAsync(Report("tools-k8s-worker-00", "still up"));
        var last = await pg.Server.ScalarAsync("SELECT xid FROM changes WHERE kind = 'n' AND key = 'tools-k8s-worker-00'", db);
        var listener = Listener(b);
        Assert.True(await Peer.EventuallyAsync(() => listener.Mark > last, TimeSpan.FromSeconds(10)), $"b's mark stayed at {listener.Mark}, not above {last}");
        Assert.True(await pg.Server.ScalarAsync($"SELECT COUNT(*) FROM change_marks WHERE mark > {last}", db) >= 1, "the mark is kept in change_marks");

        await ReconnectListenersAsync(db, b);
        var read = listener.LastResync!;
        Assert.False(read.Whole);
        Assert.Equal((0, 0), (read.Nodes, read.Builds));
        Assert.Equal(30, viewer.ListNodes(new ListNodesRequest()).Nodes.Count);
    }

    [Fact]
    public async Task Listeners_cut_at_random_moments_under_continuous_writes_end_holding_what_the_store_holds()
    {
        var db = "rs" + Guid.NewGuid().ToString("N")[..10];
        await pg.Server.CreateDatabaseAsync(db);
        await using var a = await CoordinatorHarness.StartAsync(editConfig: c =>
        {
            CoordinatorHarness.OnPostgres(pg.Server, db)(c);
            c["Coordinator"]!["ReportRate"] = 1000; // this test's writes, not the per-node limit
            c["Coordinator"]!["ReportBurst"] = 1000;
        });
        await using var b = await a.StartSiblingAsync();
        var nodes = Enumerable.Range(0, 30).Select(i => $"tools-k8s-worker-{i:D2}").ToList();
        var clients = nodes.ToDictionary(n => n, n => a.AgentClient(n));
        var admin = a.AdminClient(CoordinatorHarness.Admin);
        var version = 0;
        var cuts = 0;
        using var writing = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var cutter = Task.Run(async () =>
        {
            var r = new Random(2828);
            while (!writing.IsCancellationRequested)
            {
                await Task.Delay(r.Next(150, 1500));
                cuts += (int)await pg.Server.ScalarAsync(
                    $"SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = '{PostgresStore.ListenerApplicationName}'", db);
            }
        });
        // Four writers at once, so that a mark is often taken while a write is still running.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var random = new Random(28 + w);
            while (!writing.IsCancellationRequested)
            {
                await WriteOneAsync(random);
            }
        })));

        async Task WriteOneAsync(Random random)
        {
            var node = nodes[random.Next(nodes.Count)];
            if (random.Next(20) == 0)
            {
                try
                {
                    await admin.ForgetNodeAsync(new ForgetNodeRequest { Name = node, Force = true, Reason = "test" });
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
                {
                    // forgotten already, not reported since
                }
            }
            else
            {
                var r = Report(node, $"v{Interlocked.Increment(ref version)}");
                r.Checks[0].State = CheckState.Failing;
                await clients[node].ReportAsync(r);
            }
        }

        await cutter;
        Assert.True(cuts >= 5, $"only {cuts} listening sessions were cut");

        // Every change b did not hear it read back: once the writes stop, b shows what a (the writer) shows.
        string View(CoordinatorHarness h) => string.Join("\n", h.AdminClient(CoordinatorHarness.Viewer).ListNodes(new ListNodesRequest()).Nodes.Select(n => $"{n.Name} {n.Summary}"));
        Assert.True(await Peer.EventuallyAsync(() => View(a) == View(b), TimeSpan.FromSeconds(15)), $"after {version} writes and {cuts} cuts b shows\n{View(b)}\nbut a\n{View(a)}");
        Assert.False(Listener(b).LastResync!.Whole, Listener(b).LastResync!.Why); // and read only what changed
    }

    [Fact]
    public async Task A_role_refused_the_control_functions_starts_and_reads_the_whole_store_saying_why()
    {
        var db = NewDatabase();
        using var store = new PostgresStore(pg.Server.ConnectionString(db), PrivatePostgres.Password, 10, "test");
        store.Migrate();
        store.Commit([Saved("kept")]);
        await pg.Server.AsSuperuserAsync(db, "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC");
        try
        {
            Assert.Equal(["kept"], store.Load(10).Nodes.Select(n => n.Name)); // the start's load needs no epoch
            var (state, mark) = store.LoadMarked(10);
            Assert.Equal(["kept"], state.Nodes.Select(n => n.Name)); // the savepoint kept the transaction usable
            Assert.StartsWith("unknown", mark.Epoch, StringComparison.Ordinal);
            var (none, why) = store.LoadChanges(mark, 10);
            Assert.Null(none);
            Assert.Contains("cannot be read", why, StringComparison.Ordinal);
            Assert.Contains("42501", why, StringComparison.Ordinal);

            // Two instances on it: the listener's own epoch read is refused too, and it still listens (a change made
            // through one reaches the other) and reads the whole store on a reconnect.
            await using var a = await CoordinatorHarness.StartAsync(editConfig: CoordinatorHarness.OnPostgres(pg.Server, db));
            await using var b = await a.StartSiblingAsync();
            await a.AgentClient("tools-k8s-worker-refused").ReportAsync(Report("tools-k8s-worker-refused", "up"));
            Assert.True(await Peer.EventuallyAsync(() => b.AdminClient(CoordinatorHarness.Viewer).ListNodes(new ListNodesRequest()).Nodes.Any(n => n.Name == "tools-k8s-worker-refused"), TimeSpan.FromSeconds(10)),
                "the other instance did not hear the change");
            await ReconnectListenersAsync(db, b);
            Assert.True(Listener(b).LastResync!.Whole);
            Assert.Contains("cannot be read", Listener(b).LastResync!.Why, StringComparison.Ordinal);
        }
        finally
        {
            await pg.Server.AsSuperuserAsync(db, "GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC");
        }
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
        var epoch = store.LoadMarked(10).Mark.Epoch;
        var (none, why) = store.LoadChanges(new StoreMark(goneXid, epoch), 10); // at or below it: only the whole store
        Assert.Null(none);
        Assert.Contains("compacted", why, StringComparison.Ordinal);
        Assert.NotNull(store.LoadChanges(new StoreMark(goneXid + 1, epoch), 10).Changes);
    }

    [Fact]
    public void A_writer_running_when_a_mark_is_taken_is_read_from_that_mark_after_it_commits()
    {
        var db = NewDatabase();
        using var store = new PostgresStore(pg.Server.ConnectionString(db), PrivatePostgres.Password, 10, "test");
        store.Migrate();
        store.Commit([Saved("before")]);

        // W has written its rows and its change row, and has not committed, when the mark is taken.
        using var w = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(pg.Server.ConnectionString(db)) { Password = PrivatePostgres.Password }.ConnectionString);
        w.Open();
        using var tx = w.BeginTransaction();
        using (var write = new NpgsqlCommand("INSERT INTO nodes(name, first_seen) VALUES ('late', 1)", w, tx))
        {
            write.ExecuteNonQuery();
        }

        using (var record = new NpgsqlCommand(ChangeLog.Record, w, tx))
        {
            record.Parameters.Add(new NpgsqlParameter { Value = new[] { "n" } });
            record.Parameters.Add(new NpgsqlParameter { Value = new[] { "late" } });
            record.ExecuteNonQuery();
        }

        // A later transaction commits before the mark is taken: the snapshot's xmax is then above W, its xmin is W.
        store.Commit([Saved("meanwhile")]);
        var (_, mark) = store.LoadMarked(10);
        Assert.DoesNotContain("late", store.LoadChanges(mark, 10).Changes!.NodeNames); // not committed yet

        // The listener's own mark, as it sends it to itself, is at or below W too (and is kept in change_marks).
        long wXid;
        using (var id = new NpgsqlCommand("SELECT pg_current_xact_id()::text::bigint", w, tx))
        {
            wXid = (long)id.ExecuteScalar()!;
        }

        using (var listening = store.OpenDedicated())
        {
            string? payload = null;
            listening.Notification += (_, e) => payload = e.Payload;
            using (var listen = new NpgsqlCommand("LISTEN test_mark", listening))
            {
                listen.ExecuteNonQuery();
            }

            using (var ask = new NpgsqlCommand(ChangeLog.MarkStatement, listening))
            {
                ask.Parameters.Add(new NpgsqlParameter { Value = "test_mark" });
                ask.Parameters.Add(new NpgsqlParameter { Value = "test" });
                ask.ExecuteNonQuery();
            }

            Assert.True(payload is not null || listening.Wait(TimeSpan.FromSeconds(5)), "the mark did not come back");
            Assert.InRange(long.Parse(payload!, System.Globalization.CultureInfo.InvariantCulture), 1, wXid);
            Assert.Equal(long.Parse(payload!, System.Globalization.CultureInfo.InvariantCulture), Scalar(store, "SELECT mark FROM change_marks WHERE instance = 'test'"));
        }

        tx.Commit();

        // Committed after the mark: read from it ("before", committed before W began, is not).
        var changes = store.LoadChanges(mark, 10).Changes!;
        Assert.Contains("late", changes.NodeNames);
        Assert.Contains("late", changes.Nodes.Nodes.Select(n => n.Name));
        Assert.DoesNotContain("before", changes.NodeNames);
    }

    [Fact]
    public void A_mark_of_another_database_history_or_with_an_earlier_version_connected_reads_the_whole_store()
    {
        var db = NewDatabase();
        using var store = new PostgresStore(pg.Server.ConnectionString(db), PrivatePostgres.Password, 10, "test");
        store.Migrate();
        var (_, mark) = store.LoadMarked(10);
        Assert.NotNull(store.LoadChanges(mark, 10).Changes);
        Assert.Matches("^[0-9]+/[0-9A-F]{8}/[0-9]+$", mark.Epoch); // system identifier / timeline / database oid

        var (none, why) = store.LoadChanges(mark with { Epoch = "1/00000001/1" }, 10);
        Assert.Null(none);
        Assert.Contains("another history", why, StringComparison.Ordinal);

        // A mark above the database's own: its transaction ids went back (a snapshot of its files restored).
        (none, why) = store.LoadChanges(mark with { Xmin = mark.Xmin + 1_000_000 }, 10);
        Assert.Null(none);
        Assert.Contains("went back", why, StringComparison.Ordinal);

        // A coordinator of an earlier version connected: its commits write no change rows.
        using (var old = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(pg.Server.ConnectionString(db)) { Password = PrivatePostgres.Password, ApplicationName = ChangeLog.LegacyApplicationName, Pooling = false }.ConnectionString))
        {
            old.Open();
            (none, why) = store.LoadChanges(mark, 10);
            Assert.Null(none);
            Assert.Contains("earlier version", why, StringComparison.Ordinal);
        }

        // Its backend ends after the client closed: wait for it to be gone.
        Assert.True(SpinWait.SpinUntil(() => Scalar(store, $"SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '{ChangeLog.LegacyApplicationName}'") == 0, TimeSpan.FromSeconds(10)));

        // More nodes changed than the caller would rather read one list at a time.
        store.Commit([Saved("n1"), Saved("n2"), Saved("n3")]);
        (none, why) = store.LoadChanges(mark, 10, maxNodes: 2);
        Assert.Null(none);
        Assert.Contains("3 nodes changed", why, StringComparison.Ordinal);
        Assert.Equal(3, store.LoadChanges(mark, 10, maxNodes: 3).Changes!.NodeNames.Count);
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

        await using (var record = new NpgsqlCommand(ChangeLog.Record, c, tx))
        {
            record.Parameters.Add(new NpgsqlParameter { Value = changes.Select(x => x.Kind).ToArray() });
            record.Parameters.Add(new NpgsqlParameter { Value = changes.Select(x => x.Key).ToArray() });
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
