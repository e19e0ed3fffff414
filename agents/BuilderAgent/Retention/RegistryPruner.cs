using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Retention;

/// <summary>What a prune of one repository did: its plan, the digests deleted, and a failure that stopped it.</summary>
public sealed record PruneOutcome(PrunePlan? Plan, IReadOnlyList<string> Deleted, string? Error);

/// <summary>
/// Runs a prune of one repository against the registry (issue 27): reads every tag and the digest it names (a tag
/// that cannot be read refuses the whole repository: an unseen tag could name a digest that would be deleted), plans
/// (<see cref="PrunePlanner"/>), and says each deletion with why it is safe before it happens (a dry run says
/// "would delete" and stops there). Right before each delete, testing and latest are read again: a digest either
/// moved onto since is left. A deleted image's referrers tag (its inventory's index) and the inventory artifacts of
/// ours it lists go with it; other referrers are left and said.
/// </summary>
public sealed class RegistryPruner(RegistryClient registry)
{
    /// <summary>The most entries of one index the prune reads.</summary>
    private const int MaxIndexEntries = 1000;

    public async Task<PruneOutcome> PruneAsync(string repository, string name, int keep, IReadOnlySet<string> protectedDigests, string protectionSaid,
        bool dryRun, Action<string> say, CancellationToken ct, DateTimeOffset? youngerThan = null, Func<string?>? stillValid = null)
    {
        PrunePlan plan;
        var planned = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var names = await registry.ListTagsAsync(name, ct).ConfigureAwait(false);
            planned.UnionWith(names);
            if (names.FirstOrDefault(t => Images.NamingOptions.TagProblem(t) is not null) is { } odd)
            {
                throw new PromotionException($"the registry lists a tag \"{RegistryClient.Safe(odd)}\", which is no tag name: the repository is left as it is");
            }

            var tags = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            foreach (var tag in names.Distinct(StringComparer.Ordinal))
            {
                var manifest = await registry.GetManifestAsync(name, tag, ct).ConfigureAwait(false);
                if (manifest is not null) // gone between the listing and the read: it names nothing any more
                {
                    tags[tag] = manifest.Digest;
                    if (manifest.MediaType is OciReferrers.ImageIndex or "application/vnd.docker.distribution.manifest.list.v2+json" && !entries.ContainsKey(manifest.Digest))
                    {
                        entries[manifest.Digest] = IndexEntries(manifest, tag);
                    }
                }
            }

            plan = PrunePlanner.Plan(repository, tags, keep, protectedDigests, protectionSaid, entries, youngerThan);
        }
        catch (PromotionException ex)
        {
            say($"NOT PRUNED: {ex.Message} (nothing deleted in this repository)");
            return new PruneOutcome(null, [], ex.Message);
        }

        say($"{plan.HistoryTags} history tag(s), {plan.KeptTags} tag(s) kept; {plan.Deletions.Count} digest(s) to delete, {plan.Spared.Count} old tag(s) spared");
        foreach (var s in plan.Spared)
        {
            say($"spared {s.Tag} ({s.Digest}): {s.Why}");
        }

        var deleted = new List<string>();
        var deletions = plan.Deletions.Take(ImageResults.MaxDeletedPerResult).ToList(); // what one result can name; the rest next time
        if (deletions.Count < plan.Deletions.Count)
        {
            say($"{plan.Deletions.Count - deletions.Count} more digest(s) are left for the next prune: one prune deletes at most {ImageResults.MaxDeletedPerResult} per repository");
        }

        if (!dryRun && deletions.Count > 0)
        {
            // A tag someone added since the plan was read (another client tagging an old digest for a rollback) could
            // name a digest the plan deletes: the tags are listed again, and any new name leaves the repository alone.
            try
            {
                var now = await registry.ListTagsAsync(name, ct).ConfigureAwait(false);
                var added = now.Where(t => !planned.Contains(t)).Take(5).ToList();
                if (added.Count > 0)
                {
                    var why = $"tag(s) added since the plan was read ({string.Join(", ", added.Select(RegistryClient.Safe))}): nothing deleted here; prune again";
                    say($"PRUNE STOPPED: {why}");
                    return new PruneOutcome(plan, deleted, why);
                }
            }
            catch (PromotionException ex)
            {
                say($"PRUNE STOPPED: {ex.Message} (nothing deleted in this repository)");
                return new PruneOutcome(plan, deleted, ex.Message);
            }
        }

        foreach (var d in deletions)
        {
            if (dryRun)
            {
                say($"would delete {repository}@{d.Digest}: {d.Why}");
                continue;
            }

            if (stillValid?.Invoke() is { } stop)
            {
                say($"PRUNE STOPPED: {stop} ({deleted.Count} digest(s) deleted before it; the rest left)");
                return new PruneOutcome(plan, deleted, stop);
            }

            try
            {
                var testing = await registry.GetManifestAsync(name, TagPolicy.Testing, ct).ConfigureAwait(false);
                var latest = await registry.GetManifestAsync(name, TagPolicy.Latest, ct).ConfigureAwait(false);
                if (testing?.Digest == d.Digest || latest?.Digest == d.Digest)
                {
                    say($"left {repository}@{d.Digest}: {(testing?.Digest == d.Digest ? TagPolicy.Testing : TagPolicy.Latest)} names it now (moved since the plan)");
                    continue;
                }

                say($"deleting {repository}@{d.Digest}: {d.Why}");
                if (await registry.DeleteManifestAsync(name, d.Digest, ct).ConfigureAwait(false))
                {
                    deleted.Add(d.Digest);
                    say($"deleted {repository}@{d.Digest}");
                }
                else
                {
                    say($"{repository}@{d.Digest} was already gone");
                }

                if (d.ReferrersTag is { } referrers)
                {
                    await DeleteReferrersAsync(name, referrers, say, ct).ConfigureAwait(false);
                }
            }
            catch (PromotionException ex)
            {
                say($"PRUNE STOPPED: {ex.Message} ({deleted.Count} digest(s) deleted before it; the rest left)");
                return new PruneOutcome(plan, deleted, ex.Message);
            }
        }

        return new PruneOutcome(plan, deleted, null);
    }

    // The digests an image index lists (bounded): what a kept or held index needs.
    private static List<string> IndexEntries(Manifest index, string tag)
    {
        var entries = OciReferrers.Entries(index.Bytes)
            ?? throw new PromotionException($"the index tag {RegistryClient.Safe(tag)} names is not an image index (no manifests list): the repository is left as it is");
        return entries.Count > MaxIndexEntries
            ? throw new PromotionException($"the index tag {RegistryClient.Safe(tag)} names lists more than {MaxIndexEntries} manifests: the repository is left as it is")
            : [.. entries.Select(e => e.Digest).OfType<string>()];
    }

    // The inventory's index (the referrers tag of a deleted subject) and the artifacts of ours it lists.
    private async Task DeleteReferrersAsync(string name, string tag, Action<string> say, CancellationToken ct)
    {
        var index = await registry.GetManifestAsync(name, tag, ct).ConfigureAwait(false);
        if (index is null)
        {
            return;
        }

        if (OciReferrers.Entries(index.Bytes) is not { } entries)
        {
            say($"left the referrers tag {tag}: it is not an image index");
            return;
        }

        var ours = entries.Where(e => e.Inventory is not null && e.Digest is { } d && d.StartsWith("sha256:", StringComparison.Ordinal)).Select(e => e.Digest!).ToList();
        var others = entries.Count - ours.Count;
        await registry.DeleteManifestAsync(name, index.Digest, ct).ConfigureAwait(false);
        foreach (var artifact in ours)
        {
            await registry.DeleteManifestAsync(name, artifact, ct).ConfigureAwait(false);
        }

        say($"deleted its referrers tag {tag} and {ours.Count} inventory artifact(s) of ours{(others > 0 ? $"; {others} other referrer(s) left untagged" : string.Empty)}");
    }
}
