using Google.Protobuf.WellKnownTypes;
using System.Text.Json.Nodes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Issue 27: a builder's inventories of the digests it pushed, stored with the build's progress, and
/// `agentctl images --package` finding a package in exactly the images that hold it (SQLite, agentctl as a process).
/// </summary>
public sealed class ImagePackagesTests
{
    private static readonly string DigestA = "sha256:" + new string('a', 64);
    private static readonly string DigestB = "sha256:" + new string('b', 64);

    private static ImageInventory Inventory(string path, string digest, params (string Name, string Version, string Arch)[] packages)
    {
        var i = new ImageInventory { Repository = "registry.test:5000/fx-" + path.Replace('/', '-'), Digest = digest, Path = path };
        i.Packages.AddRange(packages.Select(p => new ImagePackage { Name = p.Name, Version = p.Version, Architecture = p.Arch }));
        return i;
    }

    private static ImageResult Pushed(string path, string digest) =>
        new() { Path = path, Name = "registry.test:5000/fx-" + path.Replace('/', '-') + ":testing", Result = "pushed", Digest = digest };

    [Fact]
    public async Task Images_Package_FindsAPackagePlantedInOneImageOnly_ByVersionToo_ViewersMay_BuildersMayNot()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        using var commands = h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-a", "base-b" }, Push = true } });
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            Assert.True(await commands.ResponseStream.MoveNext(cts.Token));
        }

        var command = commands.ResponseStream.Current;
        Assert.Equal(build.Id, command.BuildId);

        // A hostile inventory is refused whole: nothing of it is stored.
        var hostile = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running };
        hostile.Inventories.Add(Inventory("base-a", DigestA, ("openssl", "3.0.15-1~deb12u1", "amd64"), ("x\u001b]0;owned\u0007", "1", "amd64")));
        var refused = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(hostile).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.StartsWith("inventories[0].packages[1]: not a Debian package", refused.Status.Detail, StringComparison.Ordinal);

        // Review A1: a builder may only describe what this build pushed — not a digest it never pushed (planting or
        // wiping another image's packages), not another repository. Each refused whole, nothing stored.
        var foreign = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running };
        foreign.Inventories.Add(Inventory("base-a", DigestA, ("openssl", "3.0.15-1~deb12u1", "amd64")));
        var notPushed = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(foreign).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, $"inventories[0]: base-a {DigestA} is not an image this build pushed; nothing of this call was stored"), (notPushed.StatusCode, notPushed.Status.Detail));
        var elsewhere = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running };
        elsewhere.Images.Add(Pushed("base-a", DigestA));
        var moved = Inventory("base-a", DigestA, ("openssl", "3.0.15-1~deb12u1", "amd64"));
        moved.Repository = "registry.test:5000/fx-base-b";
        elsewhere.Inventories.Add(moved);
        var wrongRepository = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(elsewhere).ResponseAsync);
        Assert.StartsWith("inventories[0].repository: registry.test:5000/fx-base-b is not where this build pushed base-a (registry.test:5000/fx-base-a)", wrongRepository.Status.Detail, StringComparison.Ordinal);
        var nothing = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl");
        Assert.Equal("No images holding openssl found.", nothing.Stderr.Trim()); // not from the refused calls
        Assert.DoesNotContain((await h.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = build.Id })).Images, r => r.Result == "pushed"); // the refused call's result neither

        var progress = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded };
        progress.Images.Add(Pushed("base-a", DigestA));
        progress.Images.Add(Pushed("base-b", DigestB));
        progress.Inventories.Add(Inventory("base-a", DigestA, ("libc6", "2.36-9+deb12u10", "amd64"), ("openssl", "3.0.15-1~deb12u1", "amd64"), ("toolforge-planted", "1.0-1", "all")));
        progress.Inventories.Add(Inventory("base-b", DigestB, ("libc6", "2.36-9+deb12u10", "amd64"), ("openssl", "3.0.14-1~deb12u2", "amd64")));
        await h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(progress);

        // The planted package: in base-a only, with the header saying nodes are not known.
        var planted = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "toolforge-planted");
        Assert.True(planted.ExitCode == 0, planted.ToString());
        var lines = planted.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Nodes holding these digests: not known (no node-agent has listed its runtime's images yet).", lines[0]);
        Assert.Matches(@"^IMAGE\s+DIGEST\s+PACKAGE\s+VERSION\s+ARCH\s+RECORDED\s+NODES$", lines[1]);
        var row = Assert.Single(lines[2..]);
        Assert.Matches($@"^base-a\s+{DigestA}\s+toolforge-planted\s+1\.0-1\s+all\s+.*\s+unknown$", row);

        // openssl: both images, each with its version; =VERSION picks one.
        var all = await h.AgentCtlAsync(CoordinatorHarness.Admin, "images", "--package", "openssl", "-o", "json");
        Assert.True(all.ExitCode == 0, all.ToString());
        var matches = JsonNode.Parse(all.Stdout)!["matches"]!.AsArray();
        Assert.Equal([("base-a", DigestA, "3.0.15-1~deb12u1"), ("base-b", DigestB, "3.0.14-1~deb12u2")],
            matches.Select(m => ((string)m!["path"]!, (string)m["digest"]!, (string)m["version"]!)).OrderBy(m => m.Item1));
        var one = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl=3.0.14-1~deb12u2");
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Single(one.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[2..]);
        Assert.Contains(DigestB, one.Stdout, StringComparison.Ordinal);

        // Nothing holds it: said on stderr, exit 0. Bad input: one line, exit 2.
        var none = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "curl");
        Assert.True(none.ExitCode == 0, none.ToString());
        Assert.Equal("No images holding curl found.", none.Stderr.Trim());
        var bad = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "OpenSSL");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--package: \"OpenSSL\" is not a Debian package name", bad.Stderr, StringComparison.Ordinal);

        // A read verb: viewers and admins, not builders.
        var denied = await Assert.ThrowsAsync<RpcException>(() => h.AdminClient(CoordinatorHarness.Builder).ListImagePackagesAsync(new ListImagePackagesRequest { Package = "openssl" }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }

    [Fact]
    public async Task TheNodesHoldingADigest_AreThoseWhoseNodeAgentListedIt_AReportWithoutAListKeepsTheLast_AndAnUnreportedNodeIsNamed()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        using var commands = h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-a", "base-b" }, Push = true } });
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            Assert.True(await commands.ResponseStream.MoveNext(cts.Token));
        }

        var progress = new CommandProgress { CommandId = commands.ResponseStream.Current.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running };
        progress.Images.Add(Pushed("base-a", DigestA));
        progress.Images.Add(Pushed("base-b", DigestB));
        await h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(progress);
        foreach (var (path, digest) in new[] { ("base-a", DigestA), ("base-b", DigestB) })
        {
            var inventory = new CommandProgress { CommandId = progress.CommandId, Node = CoordinatorHarness.Builder, State = BuildState.Running };
            inventory.Inventories.Add(Inventory(path, digest, ("openssl", "3.0.15-1~deb12u1", "amd64")));
            await h.AgentClient(CoordinatorHarness.Builder).ReportCommandProgressAsync(inventory);
        }

        // worker-1 holds base-a and runs it; worker-2 holds it (pulled elsewhere under another registry name: the digest
        // is what counts) and base-b, running nothing; worker-3's node-agent has not listed its images yet.
        async Task Report(string node, params (string Digest, bool InUse)[] images)
        {
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
            if (images.Length > 0)
            {
                r.ImagesAt = Timestamp.FromDateTime(DateTime.UtcNow);
                r.Images.AddRange(images.Select((x, n) => new NodeImage { Id = "sha256:" + new string((char)('0' + n), 64), InUse = x.InUse, RepoDigests = { "docker-registry.svc.toolforge.org/toolforge-x@" + x.Digest } }));
            }

            await h.AgentClient(node).ReportAsync(r);
        }

        await Report("tools-k8s-worker-1", (DigestA, true));
        await Report("tools-k8s-worker-2", (DigestA, false), (DigestB, false));
        await Report("tools-k8s-worker-3");
        await Report("tools-k8s-worker-1"); // a later report without a listing (the runtime did not answer): the last list stands

        var answer = await h.AdminClient(CoordinatorHarness.Viewer).ListImagePackagesAsync(new ListImagePackagesRequest { Package = "openssl" });
        Assert.True(answer.NodesKnown);
        Assert.Equal(["tools-k8s-worker-3"], answer.NodesUnreported);
        var a = answer.Matches.Single(m => m.Digest == DigestA);
        Assert.Equal(["tools-k8s-worker-1", "tools-k8s-worker-2"], a.Nodes);
        Assert.Equal(["tools-k8s-worker-1"], a.NodesInUse);
        Assert.Equal(["tools-k8s-worker-2"], answer.Matches.Single(m => m.Digest == DigestB).Nodes);

        var table = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.StartsWith("Not counted in NODES: 1 node(s) whose node-agent has not listed its images (tools-k8s-worker-3).", table.Stdout, StringComparison.Ordinal);
        Assert.Matches($@"(?m)^base-a\s+{DigestA}\s+openssl\s.*\s2 \(1 in use\)$", table.Stdout);
        var wide = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "openssl", "-o", "wide");
        Assert.Contains("tools-k8s-worker-1*,tools-k8s-worker-2", wide.Stdout, StringComparison.Ordinal);

        // A list that is not a node's, or a name in another form: refused whole, nothing of the report stored.
        var bad = new ReportRequest { Node = "tools-k8s-worker-2", Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow), ImagesAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        bad.Images.Add(new NodeImage { Id = "sha256:" + new string('9', 64), RepoDigests = { "Evil\u001b[2J@sha256:" + new string('a', 64) } });
        var refused = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient("tools-k8s-worker-2").ReportAsync(bad).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.StartsWith("images[0].repo_digests[0]: ", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(["tools-k8s-worker-2"], (await h.AdminClient(CoordinatorHarness.Viewer).ListImagePackagesAsync(new ListImagePackagesRequest { Package = "openssl" })).Matches.Single(m => m.Digest == DigestB).Nodes);
    }
}
