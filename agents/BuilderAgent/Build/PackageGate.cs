using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Build;

/// <summary>Whether a security rebuild pushes an image, and why (said in the build's log).</summary>
/// <param name="Testing">The digest testing names now (null when there is none); what the local tag is put back to when not pushed.</param>
/// <param name="NoPackages">Neither the image nor testing has a dpkg database: nothing to judge by.</param>
public sealed record PushDecision(bool Push, string Why, string? Testing = null, bool NoPackages = false);

/// <summary>
/// A security rebuild's push decision (issue 27, Yelp's docker-push-latest-if-changed): an image rebuilt without the
/// cache is pushed only when its Debian package set (name, version, architecture, from the dpkg database) differs from
/// the one its <c>testing</c> digest holds now, or when its parent was pushed (it is built on the new parent). A
/// rebuild that changed no package pushes nothing, so no child image is invalidated for nothing. An image whose
/// testing is not in the registry is pushed.
/// </summary>
public sealed class PackageGate(BuilderDocker docker, RegistryClient registry, NamingOptions naming)
{
    /// <summary>The most package changes one decision names (the count is always said).</summary>
    private const int ChangesSaid = 6;

    public async Task<PushDecision> DecideAsync(string path, string builtImage, bool parentPushed, CancellationToken ct)
    {
        if (parentPushed)
        {
            return new PushDecision(true, "its parent was pushed");
        }

        var repository = naming.Repository(path);
        var testing = await registry.GetManifestAsync(ImageVerifier.NameInRegistry(naming, path), TagPolicy.Testing, ct).ConfigureAwait(false);
        if (testing is null)
        {
            return new PushDecision(true, $"{TagPolicy.Testing} is not in the registry");
        }

        IReadOnlyList<DebPackage> before, after;
        PushDecision decision;
        await using (await docker.HoldImagesAsync(ct).ConfigureAwait(false)) // no prune between the pull, the reads and the tag
        {
            await docker.EnsureImageAsync(repository, testing.Digest, ct).ConfigureAwait(false);
            before = await PackageInventory.ReadPackagesAsync(docker, $"{repository}@{testing.Digest}", ct).ConfigureAwait(false);
            after = await PackageInventory.ReadPackagesAsync(docker, builtImage, ct).ConfigureAwait(false);
            decision = Decide(before, after, testing.Digest);
            if (!decision.Push)
            {
                // Not pushed: the local tag goes back to testing's image, so what builds on it next (the children of
                // this rebuild, a later build) builds on what the registry has, never on this unpushed rebuild.
                await docker.TagImageAsync($"{repository}@{testing.Digest}", repository, naming.Tag, ct).ConfigureAwait(false);
            }
        }

        return decision;
    }

    private static PushDecision Decide(IReadOnlyList<DebPackage> before, IReadOnlyList<DebPackage> after, string testing)
    {
        if (before.Count == 0 && after.Count == 0)
        {
            return new PushDecision(false, $"no Debian package database in it nor in {TagPolicy.Testing} ({testing}): nothing to judge by (pushed only with its parent)", testing, NoPackages: true);
        }

        var was = before.Select(Key).ToHashSet(StringComparer.Ordinal);
        var now = after.Select(Key).ToHashSet(StringComparer.Ordinal);
        var gone = was.Except(now).Order(StringComparer.Ordinal).ToList();
        var added = now.Except(was).Order(StringComparer.Ordinal).ToList();
        if (gone.Count == 0 && added.Count == 0)
        {
            return new PushDecision(false, $"the same {now.Count} Debian package(s) as {TagPolicy.Testing} ({testing})", testing);
        }

        var changes = added.Select(a => "+" + a).Concat(gone.Select(g => "-" + g)).ToList();
        return new PushDecision(true, $"{changes.Count} package change(s) from {TagPolicy.Testing} ({testing}): "
            + string.Join(", ", changes.Take(ChangesSaid)) + (changes.Count > ChangesSaid ? ", …" : string.Empty), testing);
    }

    // The state too: a package gone from installed to config-files (its files removed) is a change.
    private static string Key(DebPackage p) => p.State is "installed" or "" ? $"{p.Name} {p.Version} {p.Architecture}" : $"{p.Name} {p.Version} {p.Architecture} ({p.State})";
}
