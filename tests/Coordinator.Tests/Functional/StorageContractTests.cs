using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// The storage contract: what every engine must do, run on SQLite (a temp file) and on PostgreSQL (a private cluster
/// started for the class, a fresh database per test).
/// </summary>
public abstract class StorageContract
{
    protected abstract Task<IStoreEngine> NewEngineAsync();

    private async Task<IStoreEngine> MigratedAsync()
    {
        var e = await NewEngineAsync();
        e.Migrate();
        return e;
    }

    private static SaveReport Report(string node, long at, byte[]? state = null, CheckChange[]? checks = null, ResolvedFinding[]? resolved = null,
        StoredEvent[]? events = null, int? keep = null, int kind = 1) =>
        new(node, at - 1000, kind, "1.2.3", at, 30_000, state ?? [1, 2, 3], checks ?? [], resolved ?? [], events ?? [], keep);

    [Fact]
    public async Task Migrates_an_empty_store_once_and_again_is_a_no_op()
    {
        using var e = await NewEngineAsync();
        Assert.Equal(0, e.SchemaVersion);
        Assert.Equal(0, e.Migrate());
        var version = e.SchemaVersion;
        Assert.True(version > 0);
        Assert.Equal(version, e.Migrate());
        Assert.All(e.Counts().Values, n => Assert.Equal(0, n));
        Assert.Equal(StoreSchema.Tables.Select(t => t.Table).Order(), e.Counts().Keys.Order());
    }

    [Fact]
    public async Task A_report_decided_against_a_state_the_store_no_longer_holds_is_refused_and_stores_nothing()
    {
        using var e = await MigratedAsync();
        e.Commit([Report("n1", 10_000, [9], checks: [new CheckChange("kubelet", 2, "warning")])]);
        var ok = Report("n1", 20_000, [8], checks: [new CheckChange("kubelet", 1, "ok")], resolved: [new ResolvedFinding("missing-rule", "ns/svc", "gone", 5_000)]);

        // Decided against no stored state, or an older one: refused, and the rest of the batch with it.
        Assert.Throws<StoreConflictException>(() => e.Commit([ok with { Base = new ReportBase(null) }]));
        Assert.Throws<StoreConflictException>(() => e.Commit([new AddAudit(1, "x", "y", "z", ""), ok with { Base = new ReportBase(9_000) }]));
        Assert.Equal([9], Assert.Single(e.Load(20).Agents).State);
        Assert.Equal(1, e.Counts()["check_history"]);
        Assert.Equal(0, e.Counts()["finding_history"]);
        Assert.Equal(0, e.Counts()["audit"]);

        // Against the stored state: stored. A new agent against none: stored.
        e.Commit([ok with { Base = new ReportBase(10_000) }]);
        e.Commit([Report("n1", 20_500, [5], kind: 2) with { Base = new ReportBase(null) }]);
        Assert.Equal(2, e.Counts()["check_history"]);
        Assert.Equal(1, e.Counts()["finding_history"]);
        var one = e.LoadNode("n1", 20);
        Assert.Equal([8], one.Agents.Single(a => a.Kind == 1).State);
        Assert.Equal(2, one.Agents.Count);
        Assert.Empty(e.LoadNode("n2", 20).Nodes);
    }

    [Fact]
    public async Task A_report_replaces_the_agents_state_and_keeps_its_history()
    {
        using var e = await MigratedAsync();
        e.Commit([Report("n1", 10_000, [9], checks: [new CheckChange("kubelet", 2, "down")], events: [new StoredEvent(9_000, [7, 7])])]);
        e.Commit([Report("n1", 20_000, [8], resolved: [new ResolvedFinding("missing-rule", "ns/svc", "gone", 5_000)])]);
        e.Commit([Report("n1", 20_500, [5], kind: 2)]);
        var s = e.Load(20);
        var node = Assert.Single(s.Nodes);
        Assert.Equal(("n1", 9_000L), node); // first seen from the first report, not replaced
        Assert.Equal(2, s.Agents.Count);
        var a = s.Agents.Single(x => x.Kind == 1);
        Assert.Equal([8], a.State);
        Assert.Equal(20_000, a.LastReportMs);
        Assert.Equal(30_000, a.HeartbeatMs);
        Assert.Equal("1.2.3", a.Version);
        Assert.Equal([7, 7], Assert.Single(s.RecentEvents).Body);
        Assert.Equal(1, s.EventCounts["n1"]);
        var counts = e.Counts();
        Assert.Equal(1, counts["check_history"]);
        Assert.Equal(1, counts["finding_history"]);
    }

    [Fact]
    public async Task Events_are_trimmed_to_the_newest_and_load_returns_the_last_ones_in_order()
    {
        using var e = await MigratedAsync();
        var events = Enumerable.Range(1, 30).Select(i => new StoredEvent(1_000 + i, [(byte)i])).ToArray();
        e.Commit([Report("n1", 5_000, events: events)]);
        e.Commit([Report("n2", 5_000, events: [new StoredEvent(1, [200])])]);
        var s = e.Load(5);
        Assert.Equal([26, 27, 28, 29, 30], s.RecentEvents.Where(x => x.Node == "n1").Select(x => (int)x.Body[0]));
        Assert.Equal(30, s.EventCounts["n1"]);
        e.Commit([Report("n1", 6_000, keep: 10)]);
        s = e.Load(100);
        Assert.Equal(Enumerable.Range(21, 10), s.RecentEvents.Where(x => x.Node == "n1").Select(x => (int)x.Body[0]));
        Assert.Equal(1, s.EventCounts["n2"]); // another node's events untouched
    }

    [Fact]
    public async Task Forgetting_a_node_removes_its_agents_and_retention_removes_only_old_history()
    {
        using var e = await MigratedAsync();
        e.Commit([
            Report("old", 1_000, checks: [new CheckChange("a", 1, "x")], events: [new StoredEvent(1_000, [1])]),
            Report("new", 9_000, checks: [new CheckChange("a", 1, "x")], events: [new StoredEvent(9_000, [1])]),
            new AddAudit(1_000, "admin", "request-build", "accepted", "old"),
            new AddAudit(9_000, "admin", "request-build", "accepted", "new"),
        ]);
        e.Commit([new DeleteHistoryBefore(5_000), new ForgetNodes(["old"])]);
        var s = e.Load(20);
        Assert.Equal(["new"], s.Nodes.Select(n => n.Name));
        Assert.Equal(["new"], s.Agents.Select(a => a.Node));
        var counts = e.Counts();
        Assert.Equal(1, counts["check_history"]);
        Assert.Equal(1, counts["events"]);
        Assert.Equal(1, counts["audit"]);
        var audit = Assert.Single(e.Export("audit"));
        Assert.Equal("new", audit[5]);
    }

    [Fact]
    public async Task A_build_write_that_does_not_know_of_a_stop_request_is_behind_it_and_refused()
    {
        using var e = await MigratedAsync();
        e.Commit([new SaveBuild(1, 1_000, [1], "tok1", Rank: 4)]);                   // running (place 2 × 2)
        e.Commit([new SaveBuild(1, 1_000, [2], "tok1", Rank: 5, ExpectedRank: 4)]); // an admin asked it to stop
        Assert.Throws<StoreConflictException>(() => e.Commit([new SaveBuild(1, 1_000, [3], "tok1", Rank: 4)])); // progress decided before the request
        Assert.Throws<StoreConflictException>(() => e.Commit([new SaveBuild(1, 1_000, [3], "tok1", Rank: 5, ExpectedRank: 4)])); // a second request decided on the old row
        e.Commit([new SaveBuild(1, 1_000, [4], "tok1", Rank: 5)]);                   // progress that knows: same rank, forward
        e.Commit([new SaveBuild(1, 1_000, [5], "tok1", Rank: 7)]);                   // finished (place 3 × 2 + asked)
        Assert.Throws<StoreConflictException>(() => e.Commit([new SaveBuild(1, 1_000, [6], "tok1", Rank: 7)])); // never after finished
        Assert.Equal([5], e.Load(1).Builds.Single().Body);

        // Review finding: a write that moves the build on (handed over -> running) but did not know of the request is
        // behind it too; one that finishes the build may go.
        e.Commit([new SaveBuild(2, 1_000, [1], "tok2", Rank: 2)]);                   // handed over
        e.Commit([new SaveBuild(2, 1_000, [2], "tok2", Rank: 3, ExpectedRank: 2)]); // asked to stop
        Assert.Throws<StoreConflictException>(() => e.Commit([new SaveBuild(2, 1_000, [3], "tok2", Rank: 4)])); // "Running", unaware
        e.Commit([new SaveBuild(2, 1_000, [4], "tok2", Rank: 5)]);                   // "Running", aware
        e.Commit([new SaveBuild(2, 1_000, [5], "tok2", Rank: 6)]);                   // finished (its builder's outcome stands)
        Assert.Equal([5], e.Load(1).Builds.Single(b => b.Id == 2).Body);
    }

    [Fact]
    public async Task Builds_and_their_logs_are_saved_replaced_paged_and_deleted_together()
    {
        using var e = await MigratedAsync();
        e.Commit([new SaveBuild(1, 1_000, [1], "tok1"), new SaveBuild(2, 2_000, [2], "tok2")]);
        e.Commit([new SaveBuild(1, 1_000, [11], "tok1")]);
        e.Commit([new AppendBuildLog(1, [.. Enumerable.Range(1, 4500).Select(i => ((long)i, "line " + i.ToString(CultureInfo.InvariantCulture)))])]);
        e.Commit([new AppendBuildLog(1, [(4500L, "line 4500 again — ünïcødé \u202e")])]);
        var s = e.Load(20);
        Assert.Equal([1L, 2L], s.Builds.Select(b => b.Id));
        Assert.Equal([11], s.Builds[0].Body);
        Assert.Equal("tok1", s.Builds[0].Token);
        var (max, bytes) = e.BuildLogSize(1);
        Assert.Equal(4500, max);
        var expectedBytes = Enumerable.Range(1, 4499).Sum(i => System.Text.Encoding.UTF8.GetByteCount("line " + i.ToString(CultureInfo.InvariantCulture)))
            + System.Text.Encoding.UTF8.GetByteCount("line 4500 again — ünïcødé \u202e");
        Assert.Equal(expectedBytes, bytes);
        var page = e.ReadBuildLog(1, 2000, 2000);
        Assert.Equal(2001, page[0].Seq);
        Assert.Equal(4000, page[^1].Seq);
        Assert.Equal("line 4500 again — ünïcødé \u202e", e.ReadBuildLog(1, 4499, 10).Single().Line);
        Assert.Equal((0L, 0L), e.BuildLogSize(2));
        e.Commit([new DeleteBuilds([1])]);
        Assert.Equal(0, e.Counts()["build_log"]);
        Assert.Equal([2L], e.Load(20).Builds.Select(b => b.Id));
    }

    [Fact]
    public async Task A_build_is_claimed_once_and_a_refused_claim_changes_nothing()
    {
        using var e = await MigratedAsync();
        e.Commit([new SaveBuild(1, 1_000, [1], "tok1")]);
        var seen = new List<byte[]>();
        Assert.True(e.TryClaimBuild(1, body => { seen.Add(body); return body[0] == 1 ? [2] : null; }));
        Assert.False(e.TryClaimBuild(1, body => { seen.Add(body); return body[0] == 1 ? [3] : null; }));
        Assert.Equal([[1], [2]], seen); // the second claim saw the first one's body
        Assert.False(e.TryClaimBuild(99, _ => throw new InvalidOperationException("no row, no claim callback")));

        var stored = e.LoadBuildByToken("tok1");
        Assert.NotNull(stored);
        Assert.Equal(1, stored.Id);
        Assert.Equal([2], stored.Body);
        Assert.Null(e.LoadBuildByToken("tok-unknown"));
    }

    [Fact]
    public async Task A_failing_operation_rolls_back_its_whole_commit_and_the_writer_keeps_its_neighbours()
    {
        using var e = await MigratedAsync();
        // A log line for a build that does not exist breaks the foreign key.
        Assert.ThrowsAny<System.Data.Common.DbException>(() => e.Commit([Report("n1", 1_000), new AppendBuildLog(99, [(1L, "x")])]));
        Assert.Empty(e.Load(20).Nodes);

        await using var writer = new StoreWriter(e, NullLogger.Instance);
        var good = writer.WriteAsync(Report("n2", 2_000));
        var bad = writer.WriteAsync(new AppendBuildLog(98, [(1L, "x")]));
        var good2 = writer.WriteAsync(new AddAudit(2_000, "a", "b", "c", "d"));
        await good;
        await good2;
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => bad);
        Assert.Equal(["n2"], e.Load(20).Nodes.Select(n => n.Name));
        Assert.Equal(1, e.Counts()["audit"]);
    }

    [Fact]
    public async Task ImageInventory_SentAgain_ReplacesItsDigestsRows_AndIsFoundByPackageAndVersion()
    {
        using var e = await MigratedAsync();
        var a = "sha256:" + new string('a', 64);
        var b = "sha256:" + new string('b', 64);
        // 250 packages: more than one INSERT statement's worth of rows.
        var many = Enumerable.Range(0, 250).Select(i => ($"lib{i}", "1.0-1", "amd64")).ToList();
        e.Commit([new SaveImageInventory("reg/base", a, "base", 1_000, [.. many, ("openssl", "3.0.14-1~deb12u2", "amd64")])]);
        e.Commit([new SaveImageInventory("reg/web", b, "web", 2_000, [("openssl", "3.0.15-1~deb12u1", "amd64"), ("openssl", "3.0.15-1~deb12u1", "i386")])]);
        Assert.Equal(253, e.Counts()["image_packages"]);

        var openssl = e.FindImagePackages("openssl", null, 100);
        Assert.Equal([("reg/web", b, "web", "3.0.15-1~deb12u1", "amd64", 2_000L), ("reg/web", b, "web", "3.0.15-1~deb12u1", "i386", 2_000L), ("reg/base", a, "base", "3.0.14-1~deb12u2", "amd64", 1_000L)],
            openssl.Select(r => (r.Repository, r.Digest, r.Path, r.Version, r.Architecture, r.RecordedAtMs)));
        Assert.Equal([a], e.FindImagePackages("openssl", "3.0.14-1~deb12u2", 100).Select(r => r.Digest));
        Assert.Single(e.FindImagePackages("openssl", null, 1));
        Assert.Empty(e.FindImagePackages("curl", null, 100));

        // The same digest's inventory again (a resent progress, a rebuild): its rows are replaced, not added to.
        e.Commit([new SaveImageInventory("reg/base", a, "base", 3_000, [("openssl", "3.0.15-1~deb12u1", "amd64")])]);
        Assert.Equal(3, e.Counts()["image_packages"]);
        Assert.Empty(e.FindImagePackages("lib7", null, 100));
        Assert.Equal(3_000, e.FindImagePackages("openssl", null, 100).First().RecordedAtMs);
    }

    [Fact]
    public async Task Export_and_import_copy_every_table_with_ids_and_new_rows_continue_after_them()
    {
        using var from = await MigratedAsync();
        from.Commit([
            Report("n1", 1_000, checks: [new CheckChange("c", 2, "m")], resolved: [new ResolvedFinding("k", "s", "m", 500)], events: [new StoredEvent(900, [1])]),
            new AddAudit(1_000, "admin", "x", "accepted", "d"),
            new SaveBuild(7, 1_000, [7], "tok7"),
            new SaveBuild(8, 1_000, [8], null),
            new AppendBuildLog(7, [(1L, "a"), (2L, "b")]),
            new SaveImageInventory("reg/x", "sha256:" + new string('a', 64), "x", 1_000, [("openssl", "3.0.15-1~deb12u1", "amd64"), ("tzdata", "2024a-0+deb12u1", "all")]),
        ]);
        using var to = await MigratedAsync();
        to.ImportAll(t => from.Export(t).ToList());
        Assert.Equal(from.Counts(), to.Counts());
        foreach (var (table, _) in StoreSchema.Tables)
        {
            Assert.Equal(Canonical(from.Export(table)), Canonical(to.Export(table)));
        }

        // Identity columns continue after the imported ids.
        to.Commit([new AddAudit(2_000, "admin", "y", "accepted", "d2")]);
        var ids = to.Export("audit").Select(r => Convert.ToInt64(r[0], CultureInfo.InvariantCulture)).Order().ToList();
        Assert.Equal(2, ids.Distinct().Count());
        Assert.Null(to.Load(1).Builds.Single(b => b.Id == 8).Token);
    }

    [Fact]
    public async Task A_store_newer_than_this_coordinator_is_refused()
    {
        using var e = await MigratedAsync();
        MakeNewer(e);
        var ex = Assert.Throws<InvalidOperationException>(() => e.Migrate());
        Assert.Contains("newer than this coordinator knows", ex.Message, StringComparison.Ordinal);
    }

    protected abstract void MakeNewer(IStoreEngine engine);

    private static List<string> Canonical(IEnumerable<object?[]> rows) =>
        rows.Select(r => string.Join("|", r.Select(v => v switch
        {
            null => "null",
            byte[] b => Convert.ToHexString(b),
            IConvertible c => c.ToString(CultureInfo.InvariantCulture),
            _ => v.ToString(),
        }))).Order(StringComparer.Ordinal).ToList();
}

public sealed class SqliteStorageContractTests : StorageContract, IDisposable
{
    private readonly TempDir _dir = new("store");
    private int _n;

    protected override Task<IStoreEngine> NewEngineAsync() =>
        Task.FromResult<IStoreEngine>(new SqliteStore(_dir[$"s{Interlocked.Increment(ref _n)}.db"]));

    protected override void MakeNewer(IStoreEngine engine)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + engine.Location);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA user_version = 999";
        cmd.ExecuteNonQuery();
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>One private PostgreSQL cluster for a test class.</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private int _n;

    public PrivatePostgres Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await PrivatePostgres.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>A fresh, empty database; its connection string (no password) and the password.</summary>
    public async Task<string> NewDatabaseAsync()
    {
        var name = "t" + Interlocked.Increment(ref _n).ToString(CultureInfo.InvariantCulture);
        await Server.CreateDatabaseAsync(name);
        return Server.ConnectionString(name);
    }
}

public sealed class PostgresStorageContractTests(PostgresFixture pg) : StorageContract, IClassFixture<PostgresFixture>
{
    protected override async Task<IStoreEngine> NewEngineAsync() =>
        new PostgresStore(await pg.NewDatabaseAsync(), PrivatePostgres.Password, 10, "test");

    protected override void MakeNewer(IStoreEngine engine)
    {
        var db = engine.Location[(engine.Location.LastIndexOf('/') + 1)..];
        pg.Server.ScalarAsync("INSERT INTO toolforge_schema(version) VALUES (999); SELECT 1", db).GetAwaiter().GetResult();
    }

    [Fact]
    public async Task Two_instances_migrating_an_empty_database_at_once_end_on_one_schema()
    {
        var cs = await pg.NewDatabaseAsync();
        using var a = new PostgresStore(cs, PrivatePostgres.Password, 10, "a");
        using var b = new PostgresStore(cs, PrivatePostgres.Password, 10, "b");
        using var go = new Barrier(2);
        var ta = Task.Run(() => { go.SignalAndWait(); return a.Migrate(); });
        var tb = Task.Run(() => { go.SignalAndWait(); return b.Migrate(); });
        var from = await Task.WhenAll(ta, tb);
        Assert.Equal([0, PostgresStore.CurrentVersion], from.Order()); // one did the work, the other found it done
        Assert.Equal(PostgresStore.CurrentVersion, a.SchemaVersion);
        var db = cs[(cs.IndexOf("Database=", StringComparison.Ordinal) + 9)..].Split(';')[0];
        Assert.Equal(PostgresStore.CurrentVersion, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM toolforge_schema", db));
    }

    [Fact]
    public async Task A_database_that_is_gone_is_unavailable_not_a_write_error()
    {
        var cs = await pg.NewDatabaseAsync();
        using var e = new PostgresStore(cs.Replace($"Port={pg.Server.Port}", $"Port={Peer.FreePort()}", StringComparison.Ordinal), PrivatePostgres.Password, 2, "x");
        Assert.NotNull(e.Ping()); // says why: the connection was refused
        Assert.Contains("refused", e.Ping()!, StringComparison.OrdinalIgnoreCase);
        var ex = Assert.Throws<StoreUnavailableException>(() => e.Commit([new AddAudit(1, "a", "b", "c", "d")]));
        Assert.DoesNotContain(PrivatePostgres.Password, ex.Message, StringComparison.Ordinal);
    }
}
