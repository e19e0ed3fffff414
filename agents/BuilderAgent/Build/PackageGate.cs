using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Build;

/// <summary>Whether a security rebuild pushes an image, and why (said in the build's log).</summary>
public sealed record PushDecision(bool Push, string Why);

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
        await using (await docker.HoldImagesAsync(ct).ConfigureAwait(false)) // no prune between the pull and the reads
        {
            await docker.EnsureImageAsync(repository, testing.Digest, ct).ConfigureAwait(false);
            before = await PackageInventory.ReadPackagesAsync(docker, $"{repository}@{testing.Digest}", ct).ConfigureAwait(false);
            after = await PackageInventory.ReadPackagesAsync(docker, builtImage, ct).ConfigureAwait(false);
        }

        var was = before.Select(Key).ToHashSet(StringComparer.Ordinal);
        var now = after.Select(Key).ToHashSet(StringComparer.Ordinal);
        var gone = was.Except(now).Order(StringComparer.Ordinal).ToList();
        var added = now.Except(was).Order(StringComparer.Ordinal).ToList();
        if (gone.Count == 0 && added.Count == 0)
        {
            return new PushDecision(false, $"the same {now.Count} Debian package(s) as {TagPolicy.Testing} ({testing.Digest})");
        }

        var changes = added.Select(a => "+" + a).Concat(gone.Select(g => "-" + g)).ToList();
        return new PushDecision(true, $"{changes.Count} package change(s) from {TagPolicy.Testing} ({testing.Digest}): "
            + string.Join(", ", changes.Take(ChangesSaid)) + (changes.Count > ChangesSaid ? ", …" : string.Empty));
    }

    private static string Key(DebPackage p) => $"{p.Name} {p.Version} {p.Architecture}";
}
