using Toolforge.Agents.BuilderAgent.Docker;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>What one inventory found: the image, its Debian packages and the CycloneDX document of them.</summary>
public sealed record ImageInventory(BomSubject Subject, IReadOnlyList<DebPackage> Packages, byte[] Document);

/// <summary>
/// Takes the package inventory of a pushed digest: the image's dpkg database is copied out of a container that is
/// created and never started (<see cref="BuilderDocker.ReadImageFilesAsync"/>), parsed (<see cref="DpkgStatus"/>) and
/// written as CycloneDX (<see cref="CycloneDx"/>). An image without a dpkg database (busybox, scratch) has an
/// inventory of no packages.
/// </summary>
public sealed class PackageInventory(BuilderDocker docker, TimeProvider time)
{
    public static readonly string[] DpkgPaths = ["/var/lib/dpkg/status", "/var/lib/dpkg/status.d"];

    public async Task<ImageInventory> TakeAsync(string repository, string digest, CancellationToken ct)
    {
        IReadOnlyList<(string File, byte[] Contents)> files;
        try
        {
            await docker.EnsureImageAsync(repository, digest, ct).ConfigureAwait(false);
            files = await docker.ReadImageFilesAsync($"{repository}@{digest}", DpkgPaths, DpkgStatus.MaxBytes, ct).ConfigureAwait(false);
        }
        catch (DockerOperationException ex)
        {
            throw new InventoryException(Promotion.RegistryClient.Safe(ex.Message), ex);
        }

        var subject = new BomSubject(repository, digest);
        var packages = DpkgStatus.Parse(files);
        return new ImageInventory(subject, packages, CycloneDx.Write(subject, packages, time.GetUtcNow(), Guid.NewGuid(), Common.Hosting.DaemonInfo.Version));
    }
}
