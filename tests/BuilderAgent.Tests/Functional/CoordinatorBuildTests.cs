using Google.Protobuf.WellKnownTypes;
using System.Text.Json.Nodes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>An admin's agentctl build runs on the builder daemon; viewers are refused.</summary>
[Collection("docker")]
public sealed class CoordinatorBuildTests(DockerFixture fx)
{
    [Fact]
    public async Task AdminsAgentctlBuild_RunsOnTheDaemon_AndBuildsShowsTheResult_ViewerIsRefused()
    {
        const string builderNode = CoordinatorHarness.Builder;
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        // The image repository is a git checkout exactly at its commit (the daemon's own files beside it, not in it): the
        // coordinator records the commit each image was built from, as the image's revision label says.
        var checkout = repo["images"];
        Directory.CreateDirectory(checkout);
        foreach (var entry in Directory.EnumerateFileSystemEntries(repo.Path).Where(e => e != checkout).ToList())
        {
            Directory.Move(entry, Path.Combine(checkout, Path.GetFileName(entry)));
        }

        await GitRepos.GitAsync(checkout, "init", "--quiet", "--initial-branch=main");
        await GitRepos.GitAsync(checkout, "add", "--all");
        await GitRepos.GitAsync(checkout, "-c", "user.name=Image Maintainer", "-c", "user.email=maintainer@example.org", "commit", "--quiet", "-m", "the images");
        var head = (await GitRepos.GitAsync(checkout, "rev-parse", "HEAD")).Trim();
        // Published: the remote has the commit (a local commit would be no commit of the remote's).
        await GitRepos.GitAsync(repo.Path, "init", "--quiet", "--bare", "--initial-branch=main", repo["remote.git"]);
        await GitRepos.GitAsync(checkout, "remote", "add", "origin", repo["remote.git"]);
        await GitRepos.GitAsync(checkout, "push", "--quiet", "origin", "main");
        await GitRepos.GitAsync(checkout, "fetch", "--quiet", "origin");
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo, checkout);
        await using var daemon = started;

        var refused = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build", "base-b/tools", "--push");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("permission denied", refused.Stderr, StringComparison.Ordinal);

        var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/tools", "--push");
        Assert.True(requested.ExitCode == 0, requested.ToString());
        Assert.Contains($"queued on {builderNode}", requested.Stdout, StringComparison.Ordinal);

        JsonNode? build = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json").GetAwaiter().GetResult();
            build = JsonNode.Parse(r.Stdout)?["builds"]?.AsArray().FirstOrDefault();
            return (string?)build?["state"] is "succeeded" or "failed";
        }, TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(1)), "the build did not finish: " + daemon.Output);

        Assert.Equal("succeeded", (string?)build!["state"]);
        Assert.Equal(CoordinatorHarness.Admin, (string?)build["requestedBy"]);
        Assert.Equal(builderNode, (string?)build["builder"]);
        var images = build["images"]!.AsArray();
        Assert.Equal(["base-b", "base-b/tools", "base-b/tools/cli"], images.Select(i => (string)i!["path"]!));
        Assert.All(images, i =>
        {
            Assert.Equal("pushed", (string?)i!["result"]);
            Assert.StartsWith("sha256:", (string?)i["digest"], StringComparison.Ordinal);
            Assert.Equal(head, (string?)i["revision"]);
        });
        var label = await fx.Docker.DockerAsync($"image inspect --format '{{{{index .Config.Labels \"org.opencontainers.image.revision\"}}}}' {(string)images[1]!["name"]!}");
        Assert.Equal(head, label.Trim()); // what the image itself says
        var shown = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", (string)build["id"]!);
        Assert.True(shown.ExitCode == 0, shown.ToString());
        Assert.Contains("COMMIT", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains(head[..12], shown.Stdout, StringComparison.Ordinal);

        var table = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds");
        Assert.Contains("succeeded", table.Stdout, StringComparison.Ordinal);
        var log = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)build["id"]!);
        Assert.Contains("[base-b/tools] built ", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"[base-b/tools/cli] pushed {fx.Registry.Address}/{prefix}-base-b-tools-cli:testing", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"{prefix}-base-b-tools-cli", await fx.Registry.GetAsync("/v2/_catalog"), StringComparison.Ordinal);
        Assert.Contains($"building {checkout} at commit {head}", log.Stdout, StringComparison.Ordinal);

        // Uncommitted changes: the checkout is no commit, and no revision is recorded or labelled.
        await File.AppendAllTextAsync(Path.Combine(checkout, "base-b/Dockerfile.template"), "\nLABEL org.toolforge.test.dirty=\"1\"\n");
        var dirty = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b", "--single");
        Assert.True(dirty.ExitCode == 0, dirty.ToString());
        var dirtyBuild = await FinishedAsync(coordinator, IdOf(dirty), daemon);
        Assert.Equal("succeeded", (string?)dirtyBuild["state"]);
        var rebuilt = Assert.Single(dirtyBuild["images"]!.AsArray());
        Assert.Equal("built", (string?)rebuilt!["result"]);
        Assert.Null(rebuilt["revision"]); // empty: not in the JSON
        var dirtyLog = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)dirtyBuild["id"]!);
        Assert.Contains($"the images carry no revision: {checkout} is not commit {head[..12]}: base-b/Dockerfile.template differs from the commit", dirtyLog.Stdout, StringComparison.Ordinal);
        Assert.Equal(string.Empty, (await fx.Docker.DockerAsync($"image inspect --format '{{{{index .Config.Labels \"org.opencontainers.image.revision\"}}}}' {(string)rebuilt["name"]!}")).Trim().Replace("<no value>", string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verify_TheDaemonVerifiesEachDigestItPushed_ThenPromoteMakesLatestThatDigest()
    {
        // The daemon publishes each pushed digest's package inventory to the registry: from the host's namespace, through this.
        await using var bridge = EngineApiCounter.BridgeFromHost(fx.Docker.NetworkNamespace, fx.Registry.Port);
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;

        var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/tools", "--push");
        Assert.True(requested.ExitCode == 0, requested.ToString());
        JsonNode? build = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json").GetAwaiter().GetResult();
            build = JsonNode.Parse(r.Stdout)?["builds"]?.AsArray().FirstOrDefault();
            return (string?)build?["state"] is "succeeded" or "failed";
        }, TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(1)), "the build did not finish: " + daemon.Output);
        Assert.True((string?)build!["state"] == "succeeded", build.ToJsonString() + daemon.Output);
        var digest = (string)build["images"]!.AsArray().Single(i => (string?)i!["path"] == "base-b/tools")!["digest"]!;

        var log = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)build["id"]!);
        Assert.Contains($"[base-b/tools] verified {digest}: the probe (/bin/sh -c 'exit 0') exited 0", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"[base-b/tools] inventory of {digest}: 0 Debian package(s), CycloneDX 1.5 (", log.Stdout, StringComparison.Ordinal); // busybox: no dpkg
        Assert.Contains($"kept beside the image as sha256:", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"(tag sha256-{digest[7..]})", log.Stdout, StringComparison.Ordinal);
        var verdicts = JsonNode.Parse(await File.ReadAllTextAsync(repo["state/verified.json"]))!["images"]!;
        Assert.Equal(digest, (string?)verdicts[$"{fx.Registry.Address}/{prefix}-base-b-tools"]!["digest"]);
        Assert.True((bool)verdicts[$"{fx.Registry.Address}/{prefix}-base-b-tools"]!["passed"]!);

        // promote, with the daemon's own configuration file, in the engine's namespace where the registry listens
        var promote = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, "dotnet", Run.ToolPath("toolforge-builder-agent"),
            "promote", "base-b/tools", "--config", repo["builder.json"]], TimeSpan.FromMinutes(2));
        Assert.True(promote.ExitCode == 0, promote.ToString());
        Assert.Contains($"promoted base-b/tools: latest → {digest}", promote.Stdout, StringComparison.Ordinal);
        var skopeo = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, Peer.Require("skopeo", "skopeo"), "inspect", "--tls-verify=false",
            "--format", "{{.Digest}}", $"docker://{fx.Registry.Address}/{prefix}-base-b-tools:latest"], TimeSpan.FromMinutes(1));
        Assert.True(skopeo.ExitCode == 0, skopeo.ToString());
        Assert.Equal(digest, skopeo.Stdout.Trim());
    }

    [Fact]
    public async Task Inventory_ThroughTheDaemon_AgentctlImagesFindsAPackagePlantedInOneImageOnly()
    {
        await using var bridge = EngineApiCounter.BridgeFromHost(fx.Docker.NetworkNamespace, fx.Registry.Port);
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        // Two images of this host's real dpkg database; a package planted in dpkg-a only.
        foreach (var (image, extra) in new[] { ("dpkg-a", DpkgImages.Planted), ("dpkg-b", string.Empty) })
        {
            await DpkgImages.WriteRootAsync(repo[$"{image}/root"], extra);
            await File.WriteAllTextAsync(repo[$"{image}/Dockerfile.template"], $"FROM scratch\nCOPY {image}/root/ /\n");
        }

        // dpkg-a also names an application's npm lock file: its language packages go with the inventory.
        Directory.CreateDirectory(repo["dpkg-a/root/srv/app"]);
        await File.WriteAllTextAsync(repo["dpkg-a/root/srv/app/package-lock.json"], """{"lockfileVersion":3,"packages":{"":{},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/x/node_modules/left-pad":{"version":"1.1.0"}}}""");
        await File.AppendAllTextAsync(repo["dpkg-a/Dockerfile.template"], "LABEL org.toolforge.inventory.lock-files=\"/srv/app/package-lock.json\"\n");

        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;
        var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "dpkg-a", "dpkg-b", "--push");
        Assert.True(requested.ExitCode == 0, requested.ToString());
        var build = await FinishedAsync(coordinator, IdOf(requested), daemon);
        Assert.True((string?)build["state"] == "succeeded", build.ToJsonString() + daemon.Output);
        string DigestOf(string path) => (string)build["images"]!.AsArray().Single(i => (string?)i!["path"] == path)!["digest"]!;

        var planted = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "toolforge-planted");
        Assert.True(planted.ExitCode == 0, planted.ToString());
        var lines = planted.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("Nodes holding these digests: not known", lines[0], StringComparison.Ordinal);
        var row = Assert.Single(lines[2..]);
        Assert.Matches($@"^dpkg-a\s+{DigestOf("dpkg-a")}\s+toolforge-planted\s+1\.0-1\s+all\s", row);

        // A package of the host's database: in both, each at its pushed digest.
        var libc = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "libc6", "-o", "json");
        Assert.True(libc.ExitCode == 0, libc.ToString());
        Assert.Equal([("dpkg-a", DigestOf("dpkg-a")), ("dpkg-b", DigestOf("dpkg-b"))],
            JsonNode.Parse(libc.Stdout)!["matches"]!.AsArray().Select(m => ((string)m!["path"]!, (string)m["digest"]!)).Order());

        // The language packages: found by ECOSYSTEM:NAME, each version a row (one image pins two).
        var npm = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "npm:left-pad", "-o", "json");
        Assert.True(npm.ExitCode == 0, npm.ToString());
        Assert.Equal([("dpkg-a", "1.1.0"), ("dpkg-a", "1.3.0")],
            JsonNode.Parse(npm.Stdout)!["matches"]!.AsArray().Select(m => ((string)m!["path"]!, (string)m["version"]!)).Order());
        var pinned = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "npm:left-pad=1.3.0");
        Assert.Matches($@"dpkg-a\s+{DigestOf("dpkg-a")}\s+npm:left-pad\s+1\.3\.0\s", pinned.Stdout);

        var log = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)build["id"]!);
        var inside = await DpkgImages.DpkgQueryAsync(fx.Docker, $"{fx.Registry.Address}/{prefix}-dpkg-b@{DigestOf("dpkg-b")}");
        Assert.Contains($"[dpkg-b] inventory of {DigestOf("dpkg-b")}: {inside.Count} Debian package(s), CycloneDX 1.5", log.Stdout, StringComparison.Ordinal);
        Assert.Contains($"[dpkg-a] inventory of {DigestOf("dpkg-a")}: {inside.Count + 1} Debian package(s)", log.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prune_ThroughTheCoordinator_TheDryRunListsThenTheRealOneDeletes_NeverADigestANodeHolds_NorTesting()
    {
        await using var bridge = EngineApiCounter.BridgeFromHost(fx.Docker.NetworkNamespace, fx.Registry.Port);
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;

        // Three builds of base-b/tools, each a different image: three digests, each with its history tag.
        var digests = new List<string>();
        var template = repo["base-b/tools/Dockerfile.template"];
        var original = await File.ReadAllTextAsync(template);
        for (var n = 0; n < 3; n++)
        {
            await File.WriteAllTextAsync(template, original + $"\nLABEL org.toolforge.test.generation=\"{n}\"\n");
            var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, [.. new[] { "build", "base-b/tools", "--push" }, .. n == 0 ? Array.Empty<string>() : ["--single"]]);
            Assert.True(requested.ExitCode == 0, requested.ToString());
            var build = await FinishedAsync(coordinator, IdOf(requested), daemon);
            Assert.True((string?)build["state"] == "succeeded", build.ToJsonString() + daemon.Output);
            digests.Add((string)build["images"]!.AsArray().Single(i => (string?)i!["path"] == "base-b/tools")!["digest"]!);
            var log = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)build["id"]!);
            Assert.Matches($@"\[base-b/tools\] history tag build-\d{{8}}-\d{{6}}-{digests[^1][7..19]} → {digests[^1]}", log.Stdout);
        }

        Assert.Equal(3, digests.Distinct().Count());
        var repository = $"{fx.Registry.Address}/{prefix}-base-b-tools";

        // The prune is refused while no node-agent said what its node holds.
        var blind = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "images", "prune", "base-b/tools", "--keep", "1");
        Assert.Equal(1, blind.ExitCode);
        Assert.Contains("no node-agent has reported", blind.Stderr, StringComparison.Ordinal);

        // A node runs the first build's digest (pulled under the registry's name).
        var report = new ReportRequest { Node = "tools-k8s-worker-1", Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow), ImagesAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        report.Images.Add(new NodeImage { Id = "sha256:" + new string('1', 64), InUse = true, RepoDigests = { $"{repository}@{digests[0]}" } });
        await coordinator.AgentClient("tools-k8s-worker-1").ReportAsync(report);

        var dry = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "images", "prune", "base-b/tools", "--keep", "1", "--keep-days", "0.00001", "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.ToString());
        Assert.StartsWith("dry run of prune ", dry.Stdout, StringComparison.Ordinal);
        var dryBuild = await FinishedAsync(coordinator, dry.Stdout.Split(' ')[4], daemon);
        Assert.True((string?)dryBuild["state"] == "succeeded", dryBuild.ToJsonString() + daemon.Output);
        var dryLog = (await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)dryBuild["id"]!)).Stdout;
        Assert.Contains($"[base-b/tools] would delete {repository}@{digests[1]}: named only by history tag(s) older than the newest 1", dryLog, StringComparison.Ordinal);
        Assert.Contains($"{digests[0]}): a node holds or uses this digest", dryLog, StringComparison.Ordinal);
        Assert.DoesNotContain($"would delete {repository}@{digests[0]}", dryLog, StringComparison.Ordinal);
        Assert.DoesNotContain($"would delete {repository}@{digests[2]}", dryLog, StringComparison.Ordinal);
        Assert.Equal("would-prune", (string?)dryBuild["images"]!.AsArray().Single()!["result"]);
        Assert.Equal(0, await SkopeoAsync($"{repository}@{digests[1]}")); // nothing deleted by the dry run

        var prune = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "images", "prune", "base-b/tools", "--keep", "1", "--keep-days", "0.00001");
        Assert.True(prune.ExitCode == 0, prune.ToString());
        var pruned = await FinishedAsync(coordinator, prune.Stdout.Split(' ')[1], daemon);
        Assert.True((string?)pruned["state"] == "succeeded", pruned.ToJsonString() + daemon.Output);
        var pruneLog = (await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)pruned["id"]!)).Stdout;
        Assert.True(pruneLog.IndexOf($"deleting {repository}@{digests[1]}: ", StringComparison.Ordinal) is var said and >= 0
            && pruneLog.IndexOf($"deleted {repository}@{digests[1]}", StringComparison.Ordinal) > said, pruneLog);
        Assert.Equal("deleted 1 of 1 digest(s); 1 old tag(s) spared", (string?)pruned["images"]!.AsArray().Single()!["error"]);

        // skopeo, an independent client: the held digest and testing stay, the other old one is gone.
        Assert.Equal(0, await SkopeoAsync($"{repository}@{digests[0]}"));
        Assert.NotEqual(0, await SkopeoAsync($"{repository}@{digests[1]}"));
        Assert.Equal(0, await SkopeoAsync($"{repository}:testing"));
        Assert.Equal(0, await SkopeoAsync($"{repository}@{digests[2]}"));

        async Task<int> SkopeoAsync(string reference) => (await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, Peer.Require("skopeo", "skopeo"),
            "inspect", "--tls-verify=false", "--raw", $"docker://{reference}"], TimeSpan.FromMinutes(1))).ExitCode;
    }

    [Fact]
    public async Task SecurityRebuild_WithNoPackageChange_PushesNothing_AfterAPackageIsAddedToABase_PushesExactlyItAndItsDescendants()
    {
        await using var bridge = EngineApiCounter.BridgeFromHost(fx.Docker.NetworkNamespace, fx.Registry.Port);
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        // Two Debian bases of this host's real dpkg database, and a child of the first.
        foreach (var image in new[] { "dpkg-a", "dpkg-b" })
        {
            await DpkgImages.WriteRootAsync(repo[$"{image}/root"]);
            await File.WriteAllTextAsync(repo[$"{image}/Dockerfile.template"], $"FROM scratch\nCOPY {image}/root/ /\n");
        }

        Directory.CreateDirectory(repo["dpkg-a/child"]);
        await File.WriteAllTextAsync(repo["dpkg-a/child/Dockerfile.template"], "FROM {{registry}}/{{image_prefix}}-dpkg-a:{{tag}}\nLABEL org.toolforge.test.child=\"1\"\n");
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;
        var first = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "dpkg-a", "dpkg-b", "--push");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.True((string?)(await FinishedAsync(coordinator, IdOf(first), daemon))["state"] == "succeeded", daemon.Output);
        var images = new[] { "dpkg-a", "dpkg-a/child", "dpkg-b" };
        var before = new Dictionary<string, (string Testing, int Tags)>();
        foreach (var image in images)
        {
            before[image] = await TestingAsync(image);
        }

        // No package changed: everything is rebuilt without the cache, nothing is pushed.
        var same = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "security", "dpkg-a", "dpkg-b", "--reason", "DSA-5000-1 nothing");
        Assert.True(same.ExitCode == 0, same.ToString());
        Assert.StartsWith("security rebuild ", same.Stdout, StringComparison.Ordinal);
        var sameBuild = await FinishedAsync(coordinator, same.Stdout.Split(' ')[2], daemon);
        Assert.True((string?)sameBuild["state"] == "succeeded", sameBuild.ToJsonString() + daemon.Output);
        Assert.Equal("DSA-5000-1 nothing", (string?)sameBuild["request"]!["reason"]);
        Assert.Equal(images.Select(i => (i, "same-packages")), ResultsOf(sameBuild));
        var sameLog = (await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)sameBuild["id"]!)).Stdout;
        Assert.Contains($"[dpkg-a] not pushed: the same ", sameLog, StringComparison.Ordinal);
        Assert.Contains("[dpkg-a] building ", sameLog, StringComparison.Ordinal);
        Assert.DoesNotContain("unchanged since the last build", sameLog, StringComparison.Ordinal); // rebuilt, not taken as unchanged
        foreach (var image in images)
        {
            Assert.Equal(before[image], await TestingAsync(image)); // testing where it was, no history tag added: nothing pushed
        }

        // A package added to one base: exactly it and its child are pushed.
        Directory.Delete(repo["dpkg-a/root"], recursive: true);
        await DpkgImages.WriteRootAsync(repo["dpkg-a/root"], DpkgImages.Planted);
        var changed = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "security", "dpkg-a", "dpkg-b", "--reason", "DSA-5001-1 planted");
        Assert.True(changed.ExitCode == 0, changed.ToString());
        var changedBuild = await FinishedAsync(coordinator, changed.Stdout.Split(' ')[2], daemon);
        Assert.True((string?)changedBuild["state"] == "succeeded", changedBuild.ToJsonString() + daemon.Output);
        Assert.Equal([("dpkg-a", "pushed"), ("dpkg-a/child", "pushed"), ("dpkg-b", "same-packages")], ResultsOf(changedBuild));
        var changedLog = (await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "build-log", (string)changedBuild["id"]!)).Stdout;
        Assert.Contains($"[dpkg-a] to be pushed: 1 package change(s) from testing ({before["dpkg-a"].Testing}): +toolforge-planted 1.0-1 all", changedLog, StringComparison.Ordinal);
        Assert.Contains("[dpkg-a/child] to be pushed: its parent was pushed", changedLog, StringComparison.Ordinal);
        Assert.Contains("[dpkg-b] not pushed: the same ", changedLog, StringComparison.Ordinal);
        Assert.NotEqual(before["dpkg-a"].Testing, (await TestingAsync("dpkg-a")).Testing);
        Assert.NotEqual(before["dpkg-a/child"].Testing, (await TestingAsync("dpkg-a/child")).Testing);
        Assert.Equal(before["dpkg-b"], await TestingAsync("dpkg-b"));

        // The pushed digests' inventories reached the coordinator: the planted package is found in the new dpkg-a and its child.
        var planted = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "images", "--package", "toolforge-planted", "-o", "json");
        Assert.True(planted.ExitCode == 0, planted.ToString() + changedLog);
        Assert.Equal([("dpkg-a", (await TestingAsync("dpkg-a")).Testing), ("dpkg-a/child", (await TestingAsync("dpkg-a/child")).Testing)],
            JsonNode.Parse(planted.Stdout)!["matches"]!.AsArray().Select(m => ((string)m!["path"]!, (string)m["digest"]!)).Order());

        // The audit names the reason.
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={coordinator.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT detail FROM audit WHERE action = 'request-build' AND detail LIKE '%security_rebuild=True%' ORDER BY id";
        var details = new List<string>();
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                details.Add(r.GetString(0));
            }
        }

        Assert.Equal(2, details.Count);
        Assert.Contains("reason=DSA-5001-1 planted", details[1], StringComparison.Ordinal);

        static IEnumerable<(string, string)> ResultsOf(JsonNode build) =>
            build["images"]!.AsArray().Select(i => ((string)i!["path"]!, (string)i["result"]!)).Order();

        // testing's digest (skopeo, an independent client) and how many tags the repository has.
        async Task<(string Testing, int Tags)> TestingAsync(string image)
        {
            var reference = $"docker://{fx.Registry.Address}/{prefix}-{image.Replace('/', '-')}";
            var digest = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, Peer.Require("skopeo", "skopeo"), "inspect", "--tls-verify=false",
                "--format", "{{.Digest}}", reference + ":testing"], TimeSpan.FromMinutes(1));
            Assert.True(digest.ExitCode == 0, digest.ToString());
            var tags = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, Peer.Require("skopeo", "skopeo"), "list-tags", "--tls-verify=false", reference],
                TimeSpan.FromMinutes(1));
            Assert.True(tags.ExitCode == 0, tags.ToString());
            return (digest.Stdout.Trim(), System.Text.Json.Nodes.JsonNode.Parse(tags.Stdout)!["Tags"]!.AsArray().Count);
        }
    }

    private static async Task<JsonNode> FinishedAsync(CoordinatorHarness coordinator, string id, BackgroundProcess daemon)
    {
        JsonNode? build = null;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json").GetAwaiter().GetResult();
            build = JsonNode.Parse(r.Stdout)?["builds"]?.AsArray().FirstOrDefault(b => (string?)b!["id"] == id);
            return (string?)build?["state"] is "succeeded" or "failed";
        }, TimeSpan.FromMinutes(3), TimeSpan.FromSeconds(1)), $"{id} did not finish: " + daemon.Output);
        return build!;
    }

    private static string IdOf(ProcessResult queued) => queued.Stdout.Split(' ')[1];

    [Fact]
    public async Task Promote_ThroughTheCoordinator_AdminsOnly_Audited_LatestIsTheVerifiedDigest_ANeverPushedImageIsRefused()
    {
        // The daemon runs in the host's namespace (the coordinator is there); the registry in the engine's.
        await using var bridge = EngineApiCounter.BridgeFromHost(fx.Docker.NetworkNamespace, fx.Registry.Port);
        await using var coordinator = await CoordinatorHarness.StartAsync();
        using var repo = Fixtures.CopyRepository();
        var (started, prefix) = await ServingBuilder.StartAsync(coordinator, fx, repo);
        await using var daemon = started;

        var requested = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b/tools", "--push");
        Assert.True(requested.ExitCode == 0, requested.ToString());
        var build = await FinishedAsync(coordinator, IdOf(requested), daemon);
        Assert.True((string?)build["state"] == "succeeded", build.ToJsonString() + daemon.Output);
        var digest = (string)build["images"]!.AsArray().Single(i => (string?)i!["path"] == "base-b/tools")!["digest"]!;
        bridge.Reset(); // the build uploaded its images and their package inventories; what follows must upload nothing

        // Through the coordinator latest comes only from promotion: a build for it is refused up front.
        var latestBuild = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "base-b", "--tag", "latest");
        Assert.Equal(1, latestBuild.ExitCode);
        Assert.Contains("latest comes only from promotion", latestBuild.Stderr, StringComparison.Ordinal);

        var viewer = await coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "promote", "base-b/tools");
        Assert.Equal(1, viewer.ExitCode);
        Assert.Contains("permission denied", viewer.Stderr, StringComparison.Ordinal);

        var promote = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "promote", "base-b/tools");
        Assert.True(promote.ExitCode == 0, promote.ToString());
        Assert.StartsWith("promotion ", promote.Stdout, StringComparison.Ordinal);
        var promoted = await FinishedAsync(coordinator, IdOf(promote), daemon);
        Assert.True((string?)promoted["state"] == "succeeded", promoted.ToJsonString() + daemon.Output);
        var result = promoted["images"]!.AsArray().Single()!;
        Assert.Equal(("base-b/tools", "promoted", digest), ((string?)result["path"], (string?)result["result"], (string?)result["digest"]));
        var skopeo = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, Peer.Require("skopeo", "skopeo"), "inspect", "--tls-verify=false",
            "--format", "{{.Digest}}", $"docker://{fx.Registry.Address}/{prefix}-base-b-tools:latest"], TimeSpan.FromMinutes(1));
        Assert.True(skopeo.ExitCode == 0, skopeo.ToString());
        Assert.Equal(digest, skopeo.Stdout.Trim());

        var never = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "promote", "base-a");
        Assert.True(never.ExitCode == 0, never.ToString());
        var refused = await FinishedAsync(coordinator, IdOf(never), daemon);
        Assert.Equal("failed", (string?)refused["state"]);
        var refusedImage = refused["images"]!.AsArray().Single()!;
        Assert.Equal("refused", (string?)refusedImage["result"]);
        Assert.Contains("no testing in the registry", (string?)refusedImage["error"], StringComparison.Ordinal);

        var rows = new List<(string Identity, string Action, string Result)>();
        await using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={coordinator.DatabasePath};Mode=ReadOnly;Pooling=False"))
        {
            await c.OpenAsync();
            var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT identity, action, result FROM audit ORDER BY id";
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                rows.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
            }
        }

        Assert.Contains((CoordinatorHarness.Viewer, "request-promote", "denied"), rows);
        Assert.Contains((CoordinatorHarness.Admin, "request-promote", "accepted"), rows);
        Assert.Contains((CoordinatorHarness.Admin, "request-build", "invalid"), rows);
        Assert.DoesNotContain(bridge.Requests, r => r.Method is "POST" or "PATCH" || r.Target.Contains("/blobs/uploads", StringComparison.Ordinal)); // promotion uploads nothing

        // A promotion cancelled while the registry does not answer ends cancelled, and the builder goes on with the next
        // command (before, the cancel ended the builder's work loop for good: every later command stayed queued).
        fx.Registry.Freeze();
        string stuckId;
        try
        {
            var stuck = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "promote", "base-b/tools");
            Assert.True(stuck.ExitCode == 0, stuck.ToString());
            stuckId = IdOf(stuck);
            Assert.True(await Peer.EventuallyAsync(() => StateOf(coordinator, stuckId) == "running", TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)), daemon.Output);
            var cancel = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "build", "cancel", stuckId, "--reason", "registry hangs");
            Assert.True(cancel.ExitCode == 0, cancel.ToString());
            Assert.True(await Peer.EventuallyAsync(() => StateOf(coordinator, stuckId) == "cancelled", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(1)), daemon.Output);
        }
        finally
        {
            fx.Registry.Thaw();
        }

        var next = await coordinator.AgentCtlAsync(CoordinatorHarness.Admin, "promote", "base-b/tools");
        Assert.True(next.ExitCode == 0, next.ToString());
        var after = await FinishedAsync(coordinator, IdOf(next), daemon);
        Assert.True((string?)after["state"] == "succeeded", after.ToJsonString() + daemon.Output);
        Assert.DoesNotContain("unexpected error", daemon.Output, StringComparison.Ordinal);
    }

    private static string? StateOf(CoordinatorHarness coordinator, string id)
    {
        var r = coordinator.AgentCtlAsync(CoordinatorHarness.Viewer, "builds", "-o", "json").GetAwaiter().GetResult();
        return (string?)JsonNode.Parse(r.Stdout)?["builds"]?.AsArray().FirstOrDefault(b => (string?)b!["id"] == id)?["state"];
    }
}
