using System.Globalization;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>What one inventory found: the image, its Debian packages, the language packages of the lock files it names, and the CycloneDX document of them.</summary>
public sealed record ImageInventory(BomSubject Subject, IReadOnlyList<DebPackage> Packages, byte[] Document)
{
    public IReadOnlyList<LanguagePackage> Language { get; init; } = [];

    /// <summary>Lock file entries skipped (a version in no form taken: an alias, a git, file or path dependency).</summary>
    public int LanguageSkipped { get; init; }

    /// <summary>Why the image's lock files could not be read (its Debian packages stand); null when they were, or none was named.</summary>
    public string? LanguageProblem { get; init; }
}

/// <summary>
/// Takes the package inventory of a pushed digest: the image's dpkg database is copied out of a container that is
/// created and never started (<see cref="BuilderDocker.ReadImageFilesAsync"/>), parsed (<see cref="DpkgStatus"/>) and
/// written as CycloneDX (<see cref="CycloneDx"/>). An image without a dpkg database (busybox, scratch) has an
/// inventory of no packages. With a registry client, the document is then kept beside the image as an OCI artifact
/// (<see cref="PublishAsync"/>).
/// </summary>
public sealed class PackageInventory(BuilderDocker docker, TimeProvider time, RegistryClient? registry = null) : IDisposable
{
    /// <summary>
    /// Where dpkg keeps what is installed, in the order tried: Debian's status file, else the one-file-per-package
    /// status.d of distroless images (an image with the first is not asked for the second: Debian's own dpkg never
    /// writes status.d, and asking Docker for a path an image lacks costs a 404 per push).
    /// </summary>
    public static readonly string[] DpkgPaths = ["/var/lib/dpkg/status", "/var/lib/dpkg/status.d"];

    public async Task<ImageInventory> TakeAsync(string repository, string digest, CancellationToken ct)
    {
        IReadOnlyList<DebPackage> packages;
        IReadOnlyList<LanguagePackage> language;
        var skipped = 0;
        string? problem = null;
        try
        {
            await using var hold = await docker.HoldImagesAsync(ct).ConfigureAwait(false); // no prune between the pull and the read
            await docker.EnsureImageAsync(repository, digest, ct).ConfigureAwait(false);
            packages = await ReadPackagesAsync(docker, $"{repository}@{digest}", ct).ConfigureAwait(false);
            // The label is read with the rest (Docker failing here fails the inventory, as before): only the lock files fail alone.
            var labels = (await docker.InspectImageAsync($"{repository}@{digest}", ct).ConfigureAwait(false))?.Labels
                ?? throw new InventoryException($"{RegistryClient.Safe(repository)}@{digest}: the engine does not have it");
            try
            {
                (language, skipped) = labels.ContainsKey(LockFiles.Label)
                    ? await ReadLanguagePackagesAsync(docker, $"{repository}@{digest}", Common.Contracts.ReportLimits.MaxPackagesPerImage - packages.Count, ct).ConfigureAwait(false)
                    : ([], 0);
            }
            catch (Exception ex) when (ex is InventoryException or DockerOperationException)
            {
                // The lock files fail alone: the Debian packages stand (the document says it lacks the language part).
                language = [];
                problem = RegistryClient.Safe(ex.Message);
            }
        }
        catch (DockerOperationException ex)
        {
            throw new InventoryException(RegistryClient.Safe(ex.Message), ex);
        }

        var subject = new BomSubject(repository, digest);
        return new ImageInventory(subject, packages, CycloneDx.Write(subject, packages, time.GetUtcNow(), Guid.NewGuid(), Common.Hosting.DaemonInfo.Version, language, problem))
        {
            Language = language,
            LanguageSkipped = skipped,
            LanguageProblem = problem,
        };
    }

    /// <summary>The Debian packages of <paramref name="image"/> (a reference or an id the engine holds), read from its dpkg database without starting it.</summary>
    public static async Task<IReadOnlyList<DebPackage>> ReadPackagesAsync(BuilderDocker docker, string image, CancellationToken ct)
    {
        IReadOnlyList<(string File, byte[] Contents)> files;
        try
        {
            files = await docker.ReadImageFilesAsync(image, DpkgPaths, DpkgStatus.MaxBytes, ct, firstFound: true).ConfigureAwait(false);
        }
        catch (DockerOperationException ex)
        {
            throw new InventoryException(RegistryClient.Safe(ex.Message), ex);
        }

        return DpkgStatus.Parse(files);
    }

    /// <summary>
    /// The language packages of <paramref name="image"/>: from the lock files its label <see cref="LockFiles.Label"/>
    /// names (none: none). A lock file the label names and the image lacks is an error, not an empty list.
    /// </summary>
    public static async Task<(IReadOnlyList<LanguagePackage> Packages, int Skipped)> ReadLanguagePackagesAsync(BuilderDocker docker, string image, int max, CancellationToken ct)
    {
        var labels = (await docker.InspectImageAsync(image, ct).ConfigureAwait(false))?.Labels
            ?? throw new InventoryException($"{RegistryClient.Safe(image)}: the engine does not have it");
        var paths = LockFiles.Paths(labels.TryGetValue(LockFiles.Label, out var named) ? named : null);
        if (paths.Count == 0)
        {
            return ([], 0);
        }

        var files = await docker.ReadImageFilesAsync(image, paths, LockFiles.MaxBytes, ct).ConfigureAwait(false);
        var packages = new List<LanguagePackage>();
        var skipped = 0;
        foreach (var path in paths)
        {
            var file = files.Where(f => f.File == path).Select(f => f.Contents).FirstOrDefault()
                ?? throw new InventoryException($"the image's label {LockFiles.Label} names {RegistryClient.Safe(path)}, which is not a file in it");
            var parsed = LockFiles.Parse(path, file, max - packages.Count);
            packages.AddRange(parsed.Packages);
            skipped += parsed.Skipped;
        }

        return ([.. packages.DistinctBy(p => (p.Ecosystem, p.Name, p.Version, p.Platform))], skipped);
    }

    /// <summary>
    /// Keeps <paramref name="inventory"/>'s document beside its image in the image's own repository: the document and
    /// the empty config as blobs, the artifact manifest (subject = the image's manifest) by digest, and the referrers tag
    /// schema's index under <c>sha256-&lt;hex&gt;</c> (Debian's docker-registry 2.8 has no referrers API). Returns the
    /// artifact's digest; null when this inventory has no registry client (nothing is published).
    /// </summary>
    public async Task<string?> PublishAsync(ImageInventory inventory, CancellationToken ct)
    {
        if (registry is null)
        {
            return null;
        }

        var prefix = registry.Registry + "/";
        if (!inventory.Subject.Repository.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new InventoryException($"{RegistryClient.Safe(inventory.Subject.Repository)} is not in {RegistryClient.Safe(registry.Registry)}, the registry the inventory is published to");
        }

        var name = inventory.Subject.Repository[prefix.Length..];
        try
        {
            var image = await registry.GetManifestAsync(name, inventory.Subject.Digest, ct).ConfigureAwait(false)
                ?? throw new InventoryException($"{RegistryClient.Safe(inventory.Subject.Repository)}@{inventory.Subject.Digest} is not in the registry");
            await registry.PushBlobAsync(name, OciReferrers.EmptyConfig, ct).ConfigureAwait(false);
            await registry.PushBlobAsync(name, inventory.Document, ct).ConfigureAwait(false);
            var created = time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            var artifact = OciReferrers.ArtifactManifest(
                new OciDescriptor(image.MediaType, image.Digest, image.Bytes.Length),
                new OciDescriptor(CycloneDx.MediaType, RegistryClient.Digest(inventory.Document), inventory.Document.Length),
                created);
            await registry.PutManifestAsync(name, artifact.Digest, artifact, ct).ConfigureAwait(false);

            var tag = OciReferrers.FallbackTag(inventory.Subject.Digest);
            var entry = new OciDescriptor(OciReferrers.ImageManifest, artifact.Digest, artifact.Bytes.Length, CycloneDx.MediaType,
                new Dictionary<string, string>(StringComparer.Ordinal) { [OciReferrers.CreatedAnnotation] = created, [OciReferrers.InventoryAnnotation] = "dpkg" });
            for (var attempt = 1; ; attempt++)
            {
                // Read, add, write, read again: a publish of the same digest at the same moment (another builder) may
                // have written over ours; then it is added again (at most 3 tries), never lost without a word.
                var existing = await registry.GetManifestAsync(name, tag, ct).ConfigureAwait(false);
                await registry.PutManifestAsync(name, tag, OciReferrers.AddToIndex(existing, entry), ct).ConfigureAwait(false);
                var now = await registry.GetManifestAsync(name, tag, ct).ConfigureAwait(false);
                if (now is not null && OciReferrers.ListsInventory(now, artifact.Digest, created))
                {
                    return artifact.Digest; // ours, or a later inventory of the same digest that replaced it (not a loss)
                }

                if (attempt == 3)
                {
                    throw new InventoryException($"the artifact {artifact.Digest} was pushed, but the index under tag {tag} lost it three times (another publish of the same digest at the same moment)");
                }
            }
        }
        catch (PromotionException ex)
        {
            throw new InventoryException(ex.Message, ex);
        }
    }

    public void Dispose() => registry?.Dispose();
}
