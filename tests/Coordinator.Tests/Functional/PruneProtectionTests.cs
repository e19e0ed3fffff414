using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Issue 27's retention, the coordinator's half: `agentctl images prune` is for admins, audited, refused while any
/// node-agent's image list is unknown or older than Coordinator:ImageListMaxAge, and the command handed to the builder
/// carries every digest a node holds or uses — taken at the hand-over, so a prune queued while lists were fresh and
/// handed over after they went stale carries the refusal instead.
/// </summary>
public sealed class PruneProtectionTests
{
    private static readonly string DigestA = "sha256:" + new string('a', 64);
    private static readonly string DigestB = "sha256:" + new string('b', 64);
    private static readonly string DigestC = "sha256:" + new string('c', 64);

    private static RequestBuildRequest Prune(int keep, bool dryRun = false) =>
        new() { Build = new BuildRequest { Prune = new PruneRequest { Keep = keep, DryRun = dryRun } } };

    private static async Task ReportAsync(CoordinatorHarness h, string node, params (string Entry, bool InUse)[] images)
    {
        var now = h.Time!.GetUtcNow();
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTimeOffset(now) };
        if (images.Length > 0)
        {
            r.ImagesAt = Timestamp.FromDateTimeOffset(now);
            r.Images.AddRange(images.Select((x, n) => new NodeImage { Id = "sha256:" + new string((char)('0' + n), 64), InUse = x.InUse, RepoDigests = { x.Entry } }));
        }

        await h.AgentClient(node).ReportAsync(r);
    }

    private static async Task<List<(string Identity, string Result, string Detail)>> AuditAsync(CoordinatorHarness h)
    {
        var rows = new List<(string, string, string)>();
        await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT identity, result, detail FROM audit WHERE action = 'request-prune' ORDER BY id";
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        }

        return rows;
    }

    internal static async Task<Command> NextCommandAsync(AsyncServerStreamingCall<Command> stream)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.True(await stream.ResponseStream.MoveNext(cts.Token));
        return stream.ResponseStream.Current;
    }

    [Fact]
    public async Task Prune_AdminsOnly_RefusedWhileAListIsUnknownOrStale_TheHandOverCarriesEveryHeldDigest()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        var admin = h.AdminClient(CoordinatorHarness.Admin);

        var denied = await Assert.ThrowsAsync<RpcException>(() => h.AdminClient(CoordinatorHarness.Viewer).RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        var invalid = await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(Prune(0)).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "build.prune.keep: keep 1 to 1000 history tags per repository (got 0)"), (invalid.StatusCode, invalid.Status.Detail));
        var mixed = Prune(3);
        mixed.Build.Push = true;
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(mixed).ResponseAsync)).StatusCode);

        // No node-agent yet: nothing is known of what nodes hold.
        var none = await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Equal((StatusCode.FailedPrecondition, "prune refused: no node-agent has reported: the coordinator cannot say which images nodes hold"), (none.StatusCode, none.Status.Detail));

        // worker-1 listed (A in use, B held under another registry's name, C by digest alone); worker-2 has not.
        await ReportAsync(h, "tools-k8s-worker-1", ("docker-registry.svc.toolforge.org/toolforge-x@" + DigestA, true), ("mirror.example/x@" + DigestB, false), (DigestC, false));
        await ReportAsync(h, "tools-k8s-worker-2");
        var unknown = await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, unknown.StatusCode);
        Assert.Equal("prune refused: 1 node-agent(s) never said which images their node holds: tools-k8s-worker-2 (wait for their report; `agentctl forget` only a node gone for good: a forgotten node is not protected)", unknown.Status.Detail);

        // Both listed: accepted, and the builder that takes it is handed every digest held or used, by digest.
        await ReportAsync(h, "tools-k8s-worker-2", ("docker-registry.svc.toolforge.org/toolforge-y@" + DigestB, true));
        using var builder = h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var accepted = await admin.RequestBuildAsync(Prune(5, dryRun: true));
        var command = await NextCommandAsync(builder);
        Assert.Equal(accepted.Id, command.BuildId);
        Assert.Equal(5, command.Build.Prune.Keep);
        Assert.True(command.Build.Prune.DryRun);
        Assert.Equal(string.Empty, command.Protection.Refusal);
        Assert.Equal([DigestA, DigestB, DigestC], command.Protection.Digests);
        Assert.Equal(2, command.Protection.Nodes);
        Assert.Equal(h.Time!.GetUtcNow(), command.Protection.TakenAt.ToDateTimeOffset());

        // The lists age past Coordinator:ImageListMaxAge (20 min) with the nodes still reporting, but not listing.
        h.Time.Advance(TimeSpan.FromMinutes(21));
        await ReportAsync(h, "tools-k8s-worker-1");
        await ReportAsync(h, "tools-k8s-worker-2");
        var stale = await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, stale.StatusCode);
        Assert.Contains("2 node-agent(s) listed their images longer ago than Coordinator:ImageListMaxAge (20 min): tools-k8s-worker-1 (21 min), tools-k8s-worker-2 (21 min)", stale.Status.Detail, StringComparison.Ordinal);

        var audit = await AuditAsync(h);
        // Refusals of one caller are audited once a minute with the rest counted (AuditRateTests); acceptances always.
        Assert.Equal(["denied", "invalid", "refused", "accepted", "refused"], audit.Select(a => a.Result));
        Assert.Contains("keep=5 keep_days=0 dry_run=True", audit[3].Detail, StringComparison.Ordinal);
        Assert.Contains("no node-agent has reported", audit[2].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DigestsPodsName_AreProtected_KeptByAReportWithoutAListing_AndAcrossARestart_AndBadOnesRefusedWhole()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        var node = h.AgentClient("tools-k8s-worker-1");
        var now = h.Time!.GetUtcNow();
        ReportRequest Listing(params string[] podDigests)
        {
            var r = new ReportRequest { Node = "tools-k8s-worker-1", Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTimeOffset(now), ImagesAt = Timestamp.FromDateTimeOffset(now) };
            r.Images.Add(new NodeImage { Id = "sha256:" + new string('1', 64), RepoDigests = { "docker-registry.svc.toolforge.org/toolforge-x@" + DigestA } });
            r.PodDigests.AddRange(podDigests);
            r.PodsAt = Timestamp.FromDateTimeOffset(now);
            r.RunsPods = true;
            return r;
        }

        // Refused whole, nothing stored: a name in no form, pod digests without images_at, from an agent that is no node-agent.
        var bad = await Assert.ThrowsAsync<RpcException>(() => node.ReportAsync(Listing("Evil/Name@sha256:" + new string('b', 64))).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.StartsWith("pod_digests[0]: \"Evil/Name@sha256:", bad.Status.Detail, StringComparison.Ordinal);
        Assert.EndsWith("\" is not a repo digest (registry/path@sha256:<64 hex>, lower case, or sha256:<64 hex> alone)", bad.Status.Detail, StringComparison.Ordinal);
        var unlisted = Listing(DigestB);
        unlisted.ImagesAt = null;
        unlisted.Images.Clear();
        Assert.Equal("pod_digests: listed without images_at", (await Assert.ThrowsAsync<RpcException>(() => node.ReportAsync(unlisted).ResponseAsync)).Status.Detail);
        var untimed = Listing(DigestB);
        untimed.PodsAt = null;
        Assert.Equal("pod_digests: listed without pods_at", (await Assert.ThrowsAsync<RpcException>(() => node.ReportAsync(untimed).ResponseAsync)).Status.Detail);
        var fromBuilder = Listing(DigestB);
        fromBuilder.Node = CoordinatorHarness.Builder;
        fromBuilder.Agent = AgentKind.Builder;
        fromBuilder.Images.Clear();
        Assert.Equal("pod_digests: only a node-agent reports images", (await Assert.ThrowsAsync<RpcException>(() => h.AgentClient(CoordinatorHarness.Builder).ReportAsync(fromBuilder).ResponseAsync)).Status.Detail);
        var none = await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Contains("no node-agent has reported", none.Status.Detail, StringComparison.Ordinal); // the refused reports stored nothing

        // The node's runtime holds A; pods bound to it name B (a pull to come) and C (by digest alone).
        await node.ReportAsync(Listing("docker-registry.svc.toolforge.org/toolforge-y@" + DigestB, DigestC));
        // A report without a listing (the runtime did not answer) keeps what was listed, pods' digests too.
        await node.ReportAsync(new ReportRequest { Node = "tools-k8s-worker-1", Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTimeOffset(now) });
        await h.RestartAsync(); // and the stored row survives a restart
        using var builder = h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(Prune(5, dryRun: true));
        var command = await NextCommandAsync(builder);
        Assert.Equal(string.Empty, command.Protection.Refusal);
        Assert.Equal([DigestA, DigestB, DigestC], command.Protection.Digests);

        // A node that runs pods whose pods were never listed (NodeAgent:Images:Pods off, no API): refused, named.
        var blind = Listing();
        blind.Node = "tools-k8s-worker-2";
        blind.PodsAt = null;
        await h.AgentClient("tools-k8s-worker-2").ReportAsync(blind);
        var never = await Assert.ThrowsAsync<RpcException>(() => h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, never.StatusCode);
        Assert.Equal("prune refused: 1 node-agent(s) run Kubernetes pods but listed them never or longer ago than Coordinator:ImageListMaxAge (20 min): tools-k8s-worker-2 (never) (the node's check node.images says why: the API unreadable from the node, NodeAgent:Images:Pods off, or NodeAgent:Kubernetes not reading the API)", never.Status.Detail);

        // Its runtime listed again, its pods still not (the API down since): once their listing is older than
        // ImageListMaxAge, refused the same way though the images are fresh.
        var listed = Listing();
        listed.Node = "tools-k8s-worker-2";
        await h.AgentClient("tools-k8s-worker-2").ReportAsync(listed);
        await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(Prune(5, dryRun: true)); // accepted
        h.Time.Advance(TimeSpan.FromMinutes(21));
        foreach (var name in new[] { "tools-k8s-worker-1", "tools-k8s-worker-2" })
        {
            var fresh = Listing(DigestB);
            fresh.Node = name;
            fresh.ImagesAt = Timestamp.FromDateTimeOffset(h.Time.GetUtcNow());
            fresh.SentAt = fresh.ImagesAt;
            if (name == "tools-k8s-worker-2")
            {
                fresh.PodsAt = Timestamp.FromDateTimeOffset(now); // 21 min old
            }
            else
            {
                fresh.PodsAt = fresh.ImagesAt;
            }

            await h.AgentClient(name).ReportAsync(fresh);
        }

        var stale = await Assert.ThrowsAsync<RpcException>(() => h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(Prune(5)).ResponseAsync);
        Assert.Contains("1 node-agent(s) run Kubernetes pods but listed them never or longer ago than Coordinator:ImageListMaxAge (20 min): tools-k8s-worker-2 (21 min)", stale.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APruneQueuedWhileListsWereFresh_HandedOverAfterTheyWentStale_CarriesTheRefusal()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        await ReportAsync(h, "tools-k8s-worker-1", ("docker-registry.svc.toolforge.org/toolforge-x@" + DigestA, true));
        var queued = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(Prune(2)); // no builder connected: it waits
        Assert.Equal(BuildState.Queued, queued.State);

        h.Time!.Advance(TimeSpan.FromMinutes(30));
        using var builder = h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var command = await NextCommandAsync(builder);

        Assert.Equal(queued.Id, command.BuildId);
        Assert.Empty(command.Protection.Digests);
        Assert.StartsWith("1 node-agent(s) listed their images longer ago than Coordinator:ImageListMaxAge (20 min): tools-k8s-worker-1 (30 min)", command.Protection.Refusal, StringComparison.Ordinal);
    }
}

/// <summary>Issue 27: a digest a prune deleted is forgotten by `agentctl images --package`; only a real prune may say so.</summary>
public sealed class PrunedInventoryTests
{
    private static readonly string DigestA = "sha256:" + new string('a', 64);
    private const string Repository = "registry.test:5000/fx-base-a";

    private static Task<Command> NextAsync(AsyncServerStreamingCall<Command> stream) => PruneProtectionTests.NextCommandAsync(stream);

    [Fact]
    public async Task ADigestAPruneDeleted_LeavesAgentctlImages_ADryRunOrABuildCannotSayItDeleted()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var builderClient = h.AgentClient(CoordinatorHarness.Builder);
        using var builder = builderClient.ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var admin = h.AdminClient(CoordinatorHarness.Admin);

        // A push build stores openssl in DigestA.
        await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-a" }, Push = true } });
        var build = await NextAsync(builder);
        var pushed = new CommandProgress { CommandId = build.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running };
        pushed.Images.Add(new ImageResult { Path = "base-a", Name = Repository + ":testing", Result = "pushed", Digest = DigestA });
        await builderClient.ReportCommandProgressAsync(pushed);
        var inventory = new CommandProgress { CommandId = build.Id, Node = CoordinatorHarness.Builder };
        inventory.Inventories.Add(new ImageInventory { Repository = Repository, Digest = DigestA, Path = "base-a", Packages = { new ImagePackage { Name = "openssl", Version = "3.0.15-1~deb12u1", Architecture = "amd64" } } });
        await builderClient.ReportCommandProgressAsync(inventory);
        await builderClient.ReportCommandProgressAsync(new CommandProgress { CommandId = build.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded });
        Assert.Contains(DigestA, (await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl")).Stdout, StringComparison.Ordinal);

        var node = new ReportRequest { Node = "tools-k8s-worker-1", Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow), ImagesAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        await h.AgentClient("tools-k8s-worker-1").ReportAsync(node);

        // A dry run cannot say it deleted anything: refused whole, the rows stay.
        await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Prune = new PruneRequest { Keep = 1, DryRun = true } } });
        var dry = await NextAsync(builder);
        var lie = new CommandProgress { CommandId = dry.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded };
        lie.Images.Add(new ImageResult { Path = "base-a", Name = Repository, Result = "would-prune", Deleted = { DigestA } });
        var refused = await Assert.ThrowsAsync<RpcException>(() => builderClient.ReportCommandProgressAsync(lie).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "images[].deleted: only a prune that is not a dry run deletes digests; nothing of this call was stored"), (refused.StatusCode, refused.Status.Detail));
        Assert.Contains(DigestA, (await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl")).Stdout, StringComparison.Ordinal);

        // A malformed digest is refused whole too.
        await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Prune = new PruneRequest { Keep = 1 } } });
        var prune = await NextAsync(builder);
        var bad = new CommandProgress { CommandId = prune.Id, Node = CoordinatorHarness.Builder };
        bad.Images.Add(new ImageResult { Path = "base-a", Name = Repository, Result = "pruned", Deleted = { "sha256:\u001b[2J" } });
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => builderClient.ReportCommandProgressAsync(bad).ResponseAsync)).StatusCode);

        // The real prune's result: the digest is forgotten.
        var done = new CommandProgress { CommandId = prune.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded };
        done.Images.Add(new ImageResult { Path = "base-a", Name = Repository, Result = "pruned", Error = "deleted 1 of 1 digest(s); 0 old tag(s) spared", Deleted = { DigestA } });
        await builderClient.ReportCommandProgressAsync(done);
        var after = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl");
        Assert.Equal("No images holding openssl found.", after.Stderr.Trim());
    }
}
