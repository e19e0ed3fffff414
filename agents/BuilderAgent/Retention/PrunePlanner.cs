using System.Text.RegularExpressions;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Retention;

/// <summary>One digest a prune deletes: the tags that name it (all of them history tags past the kept ones), its referrers tag, and why it is safe.</summary>
public sealed record PruneDeletion(string Digest, IReadOnlyList<string> Tags, string? ReferrersTag, string Why);

/// <summary>A history tag past the newest kept whose digest stays, and why.</summary>
public sealed record PruneSpared(string Tag, string Digest, string Why);

/// <summary>What a prune of one repository does: the deletions, the old tags spared, and the counts it says.</summary>
public sealed record PrunePlan(string Repository, IReadOnlyList<PruneDeletion> Deletions, IReadOnlyList<PruneSpared> Spared, int HistoryTags, int KeptTags);

/// <summary>
/// Decides a prune of one repository without the registry (issue 27). Kept, always: <c>testing</c>, <c>latest</c>,
/// every tag the builder did not make (neither a history tag nor a referrers tag: someone's own), and the
/// <c>keep</c> newest history tags. A history tag past those names a digest that is deleted only when no kept tag
/// names the same digest (deleting a manifest deletes every tag on it: once testing and latest share a digest, a naive
/// "delete the old tag" deletes latest) and no node holds or uses it (<paramref name="protectedDigests"/>, the
/// coordinator's), nor through an image index (one kept or held keeps what it lists; one listing something kept or
/// held stays); history tags younger than a bound are kept too (someone may have pinned one). A referrers tag (<c>sha256-&lt;hex&gt;</c>, the inventory's index) goes with its subject only.
/// </summary>
public static partial class PrunePlanner
{
    [GeneratedRegex(@"^sha256-[0-9a-f]{64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex ReferrersTag();

    public static bool IsReferrersTag(string tag) => ReferrersTag().IsMatch(tag);

    /// <param name="repository">registry/path, as said in the lines.</param>
    /// <param name="tags">Every tag of the repository and the digest it names now (a tag that could not be read must not be left out: the caller refuses the repository instead).</param>
    /// <param name="keep">History tags kept, newest first (≥ 1).</param>
    /// <param name="protectedDigests">Digests some node holds or uses.</param>
    /// <param name="protectionSaid">How the protection is described in a deletion's why ("none of the 12 nodes' lists (oldest 3 min)").</param>
    /// <param name="entries">Per digest that is an image index (of those the tags name), the digests it lists: an index
    /// kept or held keeps what it lists, and an index is spared when anything it lists is kept or held.</param>
    /// <param name="youngerThan">History tags of builds after this are kept whatever keep says (someone may have pinned one).</param>
    public static PrunePlan Plan(string repository, IReadOnlyDictionary<string, string> tags, int keep, IReadOnlySet<string> protectedDigests, string protectionSaid,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? entries = null, DateTimeOffset? youngerThan = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        entries ??= new Dictionary<string, IReadOnlyList<string>>();
        var history = tags.Select(t => (Tag: t.Key, Digest: t.Value, At: HistoryTags.When(t.Key)))
            .Where(t => t.At is not null)
            .OrderByDescending(t => t.At).ThenByDescending(t => t.Tag, StringComparer.Ordinal)
            .ToList();
        var old = history.Skip(keep).Where(t => youngerThan is not { } bound || t.At < bound).ToList();
        var oldTags = old.Select(t => t.Tag).ToHashSet(StringComparer.Ordinal);

        // Kept: everything but the old history tags and the referrers tags (those follow their subject).
        var kept = tags.Where(t => !oldTags.Contains(t.Key) && !IsReferrersTag(t.Key)).ToList();
        var keptBy = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (tag, digest) in kept)
        {
            if (!keptBy.TryGetValue(digest, out var list))
            {
                keptBy[digest] = list = [];
            }

            list.Add(tag);
        }

        var testing = tags.GetValueOrDefault(TagPolicy.Testing);
        var latest = tags.GetValueOrDefault(TagPolicy.Latest);
        var deletions = new List<PruneDeletion>();
        var spared = new List<PruneSpared>();
        foreach (var group in old.GroupBy(t => t.Digest, StringComparer.Ordinal).OrderBy(g => g.Min(t => t.At)))
        {
            var names = group.Select(t => t.Tag).Order(StringComparer.Ordinal).ToList();
            if (keptBy.TryGetValue(group.Key, out var keptNames))
            {
                var why = $"its digest is also named by kept tag(s) {string.Join(", ", keptNames.Order(StringComparer.Ordinal))} (deleting it would delete them)";
                spared.AddRange(names.Select(n => new PruneSpared(n, group.Key, why)));
                continue;
            }

            if (protectedDigests.Contains(group.Key))
            {
                spared.AddRange(names.Select(n => new PruneSpared(n, group.Key, "a node holds or uses this digest")));
                continue;
            }

            // Through an index: listed by a kept or held index (deleting it breaks that index), or an index listing
            // something kept or held (a node that pulled one platform's manifest by the index's name).
            if (entries.FirstOrDefault(e => (keptBy.ContainsKey(e.Key) || protectedDigests.Contains(e.Key)) && e.Value.Contains(group.Key, StringComparer.Ordinal)).Key is { } holder)
            {
                spared.AddRange(names.Select(n => new PruneSpared(n, group.Key, $"the index {holder}, kept or held, lists it")));
                continue;
            }

            if (entries.TryGetValue(group.Key, out var lists) && lists.FirstOrDefault(e => keptBy.ContainsKey(e) || protectedDigests.Contains(e)) is { } entry)
            {
                spared.AddRange(names.Select(n => new PruneSpared(n, group.Key, $"this index lists {entry}, which is kept or held")));
                continue;
            }

            var referrers = Inventory.OciReferrers.FallbackTag(group.Key);
            deletions.Add(new PruneDeletion(group.Key, names, tags.ContainsKey(referrers) ? referrers : null,
                $"named only by history tag(s) older than the newest {keep} ({string.Join(", ", names)}); "
                + $"not testing ({testing ?? "none"}) nor latest ({latest ?? "none"}); no kept tag names it; held or used by {protectionSaid}"));
        }

        return new PrunePlan(repository, deletions, spared, history.Count, kept.Count);
    }
}
