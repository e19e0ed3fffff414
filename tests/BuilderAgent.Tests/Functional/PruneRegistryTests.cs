using System.Text;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.BuilderAgent.Retention;
using Toolforge.Agents.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// Issue 27's retention acceptance against Debian's docker-registry with delete enabled: a seeded registry (over 200
/// tags, digests shared by several tags, testing = latest in some repositories, someone's own tags, inventory
/// referrers), 100 randomized prunes (keep N, the digests nodes hold), each a dry run first and then the real one;
/// after each: no digest held by a node or named by a kept tag deleted, every kept tag where it was, exactly the dry
/// run's deletions done, each said before it happened; skopeo (an independent client) agrees on testing and latest.
/// </summary>
public sealed class PruneRegistryTests(ITestOutputHelper output)
{
    private const int Repositories = 4;
    private const int DigestsPerRepository = 34;
    private const int HistoryTagsPerRepository = 48;

    private sealed record Seeded(string Name, Dictionary<string, Manifest> Tags, List<Manifest> Images, Dictionary<string, Manifest> Artifacts);

    private static byte[] Json(string s) => Encoding.UTF8.GetBytes(s);

    private static Manifest ImageManifest(string configDigest, int configSize, string layerDigest, int layerSize)
    {
        var bytes = Json($$"""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{configDigest}}","size":{{configSize}}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{{layerDigest}}","size":{{layerSize}}}]}""");
        return new Manifest(bytes, OciReferrers.ImageManifest, RegistryClient.Digest(bytes));
    }

    private static async Task<List<Seeded>> SeedAsync(RegistryClient registry, Random random)
    {
        var layer = Json("layer");
        var seeded = new List<Seeded>();
        for (var r = 0; r < Repositories; r++)
        {
            var name = $"toolforge-seed{r}";
            await registry.PushBlobAsync(name, layer, CancellationToken.None);
            await registry.PushBlobAsync(name, OciReferrers.EmptyConfig, CancellationToken.None);
            var images = new List<Manifest>();
            for (var i = 0; i < DigestsPerRepository; i++)
            {
                var config = Json($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{name}-{i}\"}}");
                await registry.PushBlobAsync(name, config, CancellationToken.None);
                var m = ImageManifest(RegistryClient.Digest(config), config.Length, RegistryClient.Digest(layer), layer.Length);
                images.Add(m);
            }

            // History tags in time order; some builds gave the same digest again (a rebuild with nothing changed).
            var tags = new Dictionary<string, Manifest>(StringComparer.Ordinal);
            var start = new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);
            Manifest newest = images[0];
            for (var t = 0; t < HistoryTagsPerRepository; t++)
            {
                newest = t < DigestsPerRepository ? images[t] : images[random.Next(DigestsPerRepository)];
                tags[HistoryTags.For(start.AddHours(t * 7), newest.Digest)] = newest;
            }

            tags[TagPolicy.Testing] = newest;
            tags[TagPolicy.Latest] = r % 2 == 0 ? newest : images[random.Next(DigestsPerRepository / 2)]; // testing = latest in half
            tags["v1.0"] = images[random.Next(DigestsPerRepository)]; // someone's own tag on an old digest
            var artifacts = new Dictionary<string, Manifest>(StringComparer.Ordinal);
            foreach (var subject in images.Take(8))
            {
                var doc = Json($"{{\"bomFormat\":\"CycloneDX\",\"subject\":\"{subject.Digest}\"}}");
                await registry.PushBlobAsync(name, doc, CancellationToken.None);
                var artifact = OciReferrers.ArtifactManifest(new OciDescriptor(subject.MediaType, subject.Digest, subject.Bytes.Length),
                    new OciDescriptor("application/vnd.cyclonedx+json", RegistryClient.Digest(doc), doc.Length), "2026-06-01T00:00:00Z");
                await registry.PutManifestAsync(name, artifact.Digest, artifact, CancellationToken.None);
                var index = OciReferrers.AddToIndex(null, new OciDescriptor(artifact.MediaType, artifact.Digest, artifact.Bytes.Length, "application/vnd.cyclonedx+json",
                    new Dictionary<string, string> { [OciReferrers.InventoryAnnotation] = "dpkg", [OciReferrers.CreatedAnnotation] = "2026-06-01T00:00:00Z" }));
                tags[OciReferrers.FallbackTag(subject.Digest)] = index;
                artifacts[subject.Digest] = artifact;
            }

            seeded.Add(new Seeded(name, tags, images, artifacts));
        }

        return seeded;
    }

    // Puts every seeded manifest and tag back (a deleted manifest comes back from its bytes; its blobs were never collected).
    private static async Task RestoreAsync(RegistryClient registry, List<Seeded> seeded)
    {
        foreach (var s in seeded)
        {
            var tags = (await registry.ListTagsAsync(s.Name, CancellationToken.None)).ToHashSet(StringComparer.Ordinal);
            foreach (var a in s.Artifacts.Values)
            {
                if (await registry.GetManifestAsync(s.Name, a.Digest, CancellationToken.None) is null)
                {
                    await registry.PutManifestAsync(s.Name, a.Digest, a, CancellationToken.None);
                }
            }

            foreach (var (tag, m) in s.Tags.Where(t => !tags.Contains(t.Key)))
            {
                await registry.PutManifestAsync(s.Name, tag, m, CancellationToken.None);
            }
        }
    }

    [Fact]
    public async Task OneHundredRandomizedPrunes_WithWhatAContainerdNodeAndThePodsOfTheApiHold_NeverDeleteAHeldOrKeptDigest_AndDoExactlyWhatTheDryRunListed()
    {
        await using var reg = await PrivateRegistry.StartAsync();
        using var registry = new RegistryClient(reg.Address, null, TimeSpan.FromSeconds(30));
        var random = new Random(2027);
        var seeded = await SeedAsync(registry, random);
        await RestoreAsync(registry, seeded); // puts every seeded tag
        var totalTags = 0;
        foreach (var s in seeded)
        {
            totalTags += (await registry.ListTagsAsync(s.Name, CancellationToken.None)).Count;
        }

        Assert.True(totalTags >= 200, $"seeded {totalTags} tags");

        // The in-use set comes the way the daemon gets it: a containerd node's runtime (images tagged by repository@digest,
        // as a pull by digest leaves them) and the pods the fake API server binds to that node, listed by the node-agent's
        // own check, reported to a real coordinator, and handed over as the coordinator's protection.
        await using var node = await NodeInTheLoop.StartAsync();
        await using var coordinator = await CoordinatorHarness.StartAsync();
        var all = seeded.SelectMany(s => s.Images.Select(m => $"{reg.Address}/{s.Name}@{m.Digest}")).ToList();
        var runtimeHolds = all.Where(_ => random.NextDouble() < 0.14).ToHashSet(StringComparer.Ordinal);
        await node.TagAsync(runtimeHolds);

        var pruner = new RegistryPruner(registry);
        var skopeo = Peer.Require("skopeo", "skopeo");
        int deletedTotal = 0, sparedHeld = 0, sparedShared = 0, podNamed = 0;
        for (var run = 0; run < 100; run++)
        {
            var keep = random.Next(1, 13);
            // The runtime loses three images and pulls three; the pods are drawn anew: some running (their imageID), some
            // pinned by digest whose pull is still to come.
            var gone = runtimeHolds.OrderBy(_ => random.Next()).Take(3).ToList();
            var pulled = all.Where(r => !runtimeHolds.Contains(r)).OrderBy(_ => random.Next()).Take(3).ToList();
            await node.UntagAsync(gone);
            await node.TagAsync(pulled);
            runtimeHolds.ExceptWith(gone);
            runtimeHolds.UnionWith(pulled);
            var running = all.Where(_ => random.NextDouble() < 0.06).ToList();
            var pending = all.Where(_ => random.NextDouble() < 0.06).ToList();
            node.SetPods(running, pending);
            podNamed += running.Count + pending.Count;

            var report = await node.ListAsync(runtimeHolds, running.Concat(pending).ToHashSet(StringComparer.Ordinal));
            await coordinator.AgentClient(NodeInTheLoop.Name).ReportAsync(report);
            var protection = coordinator.Services.GetRequiredService<Coordinator.State.StateStore>().ImageProtection();
            Assert.True(protection.Refusal.Length == 0, protection.Refusal);
            var held = protection.Digests.ToHashSet(StringComparer.Ordinal);

            // What the test itself knows is held, independently of the chain: all of it is protected, and nothing else seeded.
            var expectedHeld = runtimeHolds.Concat(running).Concat(pending).Select(r => r.Split('@')[1]).ToHashSet(StringComparer.Ordinal);
            var seededDigests = all.Select(r => r.Split('@')[1]).ToHashSet(StringComparer.Ordinal);
            Assert.Equal(expectedHeld.Order(StringComparer.Ordinal), held.Where(seededDigests.Contains).Order(StringComparer.Ordinal));

            foreach (var s in seeded)
            {
                var (deleted, spared, shared) = await PruneOneAsync(registry, pruner, reg.Address, s, keep, held, run, run % 25 == 0 ? skopeo : null);
                deletedTotal += deleted;
                sparedHeld += spared;
                sparedShared += shared;
            }

            await RestoreAsync(registry, seeded);
        }

        output.WriteLine($"{totalTags} tags seeded; 100 runs: {deletedTotal} digests deleted, {sparedHeld} old tags spared as held by the node or its pods ({podNamed} digests named by pods over the runs), {sparedShared} as sharing a kept tag's digest");
        Assert.True(deletedTotal > 100 && sparedHeld > 50 && sparedShared > 10, "the runs exercised deletions and both guards");
    }

    // One repository's dry run then real prune, and everything asserted of them; returns (deleted, spared as held, spared as shared).
    private static async Task<(int, int, int)> PruneOneAsync(RegistryClient registry, RegistryPruner pruner, string address, Seeded s, int keep, HashSet<string> held, int run, string? skopeo)
    {
        var repository = $"{address}/{s.Name}";
        var dry = new List<string>();
        var dryOutcome = await pruner.PruneAsync(repository, s.Name, keep, held, "none of the test's nodes", dryRun: true, dry.Add, CancellationToken.None);
        Assert.Null(dryOutcome.Error);
        var listed = dry.Where(l => l.StartsWith("would delete ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2].Split('@')[1].TrimEnd(':')).ToList();
        Assert.Equal(dryOutcome.Plan!.Deletions.Select(d => d.Digest), listed);
        foreach (var m in s.Images) // the dry run deleted nothing
        {
            Assert.NotNull(await registry.GetManifestAsync(s.Name, m.Digest, CancellationToken.None));
        }

        var said = new List<string>();
        var outcome = await pruner.PruneAsync(repository, s.Name, keep, held, "none of the test's nodes", dryRun: false, said.Add, CancellationToken.None);
        Assert.Null(outcome.Error);
        Assert.Equal(listed, outcome.Deleted); // exactly what the dry run listed
        foreach (var digest in outcome.Deleted) // each said before it happened
        {
            var announced = said.FindIndex(l => l.StartsWith($"deleting {repository}@{digest}: ", StringComparison.Ordinal));
            var done = said.IndexOf($"deleted {repository}@{digest}");
            Assert.True(announced >= 0 && done > announced, $"run {run}: {digest} deleted without being said first");
        }

        // The kept tags, as the test computes them independently of the planner.
        var history = s.Tags.Where(t => HistoryTags.When(t.Key) is not null).OrderByDescending(t => HistoryTags.When(t.Key)).ThenByDescending(t => t.Key, StringComparer.Ordinal).ToList();
        var keptTags = history.Take(keep).Concat(s.Tags.Where(t => t.Key is TagPolicy.Testing or TagPolicy.Latest or "v1.0")).ToList();
        var keptDigests = keptTags.Select(t => t.Value.Digest).ToHashSet(StringComparer.Ordinal);
        foreach (var digest in outcome.Deleted)
        {
            Assert.DoesNotContain(digest, held);
            Assert.DoesNotContain(digest, keptDigests);
        }

        foreach (var m in s.Images.Where(m => held.Contains(m.Digest) || keptDigests.Contains(m.Digest)))
        {
            Assert.NotNull(await registry.GetManifestAsync(s.Name, m.Digest, CancellationToken.None));
        }

        foreach (var (tag, m) in keptTags)
        {
            Assert.Equal(m.Digest, (await registry.GetManifestAsync(s.Name, tag, CancellationToken.None))?.Digest);
        }

        // Every old digest that was neither held nor kept is gone (the prune is not a no-op), with its inventory.
        var expectedGone = history.Skip(keep).Select(t => t.Value.Digest).Where(d => !held.Contains(d) && !keptDigests.Contains(d)).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(expectedGone.Order(StringComparer.Ordinal), outcome.Deleted.Order(StringComparer.Ordinal));
        foreach (var digest in expectedGone.Where(s.Artifacts.ContainsKey))
        {
            Assert.Null(await registry.GetManifestAsync(s.Name, OciReferrers.FallbackTag(digest), CancellationToken.None));
            Assert.Null(await registry.GetManifestAsync(s.Name, s.Artifacts[digest].Digest, CancellationToken.None));
        }

        if (skopeo is not null) // skopeo, an independent client, agrees on testing and latest
        {
            foreach (var tag in new[] { TagPolicy.Testing, TagPolicy.Latest })
            {
                var r = await Run.ProcessAsync(skopeo, ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", $"docker://{repository}:{tag}"], TimeSpan.FromSeconds(60));
                Assert.True(r.ExitCode == 0, r.ToString());
                Assert.Equal(s.Tags[tag].Digest, r.Stdout.Trim());
            }
        }

        return (outcome.Deleted.Count, outcome.Plan!.Spared.Count(x => x.Why.StartsWith("a node", StringComparison.Ordinal)), outcome.Plan.Spared.Count(x => x.Why.StartsWith("its digest", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ATagAddedAfterThePlanWasRead_StopsTheRepository_NothingDeleted()
    {
        await using var reg = await PrivateRegistry.StartAsync();
        using var registry = new RegistryClient(reg.Address, null, TimeSpan.FromSeconds(30));
        const string name = "toolforge-rollback";
        var layer = Json("layer");
        await registry.PushBlobAsync(name, layer, CancellationToken.None);
        var images = new List<Manifest>();
        for (var i = 0; i < 3; i++)
        {
            var config = Json($"{{\"seed\":\"{i}\"}}");
            await registry.PushBlobAsync(name, config, CancellationToken.None);
            var m = ImageManifest(RegistryClient.Digest(config), config.Length, RegistryClient.Digest(layer), layer.Length);
            await registry.PutManifestAsync(name, HistoryTags.For(new DateTimeOffset(2026, 6, 1 + i, 0, 0, 0, TimeSpan.Zero), m.Digest), m, CancellationToken.None);
            images.Add(m);
        }

        await registry.PutManifestAsync(name, TagPolicy.Testing, images[2], CancellationToken.None);
        var said = new List<string>();
        var outcome = await new RegistryPruner(registry).PruneAsync($"{reg.Address}/{name}", name, 1, new HashSet<string>(), "none", dryRun: false, line =>
        {
            said.Add(line);
            if (line.Contains(" history tag(s), ", StringComparison.Ordinal))
            {
                // Someone tags the oldest digest for a rollback between the plan and the deletions.
                registry.PutManifestAsync(name, "rollback", images[0], CancellationToken.None).GetAwaiter().GetResult();
            }
        }, CancellationToken.None);

        Assert.Equal("tag(s) added since the plan was read (rollback): nothing deleted here; prune again", outcome.Error);
        Assert.Empty(outcome.Deleted);
        Assert.Equal(2, outcome.Plan!.Deletions.Count); // the plan would have deleted both old digests
        Assert.DoesNotContain(said, l => l.StartsWith("deleting ", StringComparison.Ordinal));
        foreach (var m in images)
        {
            Assert.NotNull(await registry.GetManifestAsync(name, m.Digest, CancellationToken.None));
        }
    }

    [Fact]
    public async Task ARegistryThatStopsAnsweringMidPrune_EndsIt_WithWhatWasDeletedSaid_AndTheRestLeft()
    {
        await using var reg = await PrivateRegistry.StartAsync();
        using var registry = new RegistryClient(reg.Address, null, TimeSpan.FromSeconds(2));
        const string name = "toolforge-midway";
        var layer = Json("layer");
        await registry.PushBlobAsync(name, layer, CancellationToken.None);
        var images = new List<Manifest>();
        for (var i = 0; i < 4; i++)
        {
            var config = Json($"{{\"seed\":\"{i}\"}}");
            await registry.PushBlobAsync(name, config, CancellationToken.None);
            var m = ImageManifest(RegistryClient.Digest(config), config.Length, RegistryClient.Digest(layer), layer.Length);
            await registry.PutManifestAsync(name, HistoryTags.For(new DateTimeOffset(2026, 6, 1 + i, 0, 0, 0, TimeSpan.Zero), m.Digest), m, CancellationToken.None);
            images.Add(m);
        }

        var said = new List<string>();
        PruneOutcome outcome;
        try
        {
            outcome = await new RegistryPruner(registry).PruneAsync($"{reg.Address}/{name}", name, 1, new HashSet<string>(), "none", dryRun: false, line =>
            {
                said.Add(line);
                if (line.StartsWith($"deleted {reg.Address}/{name}@", StringComparison.Ordinal))
                {
                    reg.Freeze(); // after the first deletion the registry takes connections and never answers
                }
            }, CancellationToken.None);
        }
        finally
        {
            reg.Thaw();
        }

        Assert.Equal([images[0].Digest], outcome.Deleted); // what was deleted is said as deleted
        Assert.Contains("did not answer within 2 s", outcome.Error, StringComparison.Ordinal);
        Assert.Contains(said, l => l.StartsWith("PRUNE STOPPED: ", StringComparison.Ordinal) && l.EndsWith("(1 digest(s) deleted before it; the rest left)", StringComparison.Ordinal));
        Assert.Null(await registry.GetManifestAsync(name, images[0].Digest, CancellationToken.None));
        foreach (var m in images.Skip(1))
        {
            Assert.NotNull(await registry.GetManifestAsync(name, m.Digest, CancellationToken.None)); // the rest left
        }
    }
}
