using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>What one verify did: the image, its repository, the digest probed (empty when there was none) and the verdict.</summary>
public sealed record VerifyResult(string Path, string Repository, string Digest, bool Passed, string Detail);

/// <summary>
/// Verifies an image's <c>testing</c> digest: the probe (<see cref="PromotionOptions.CommandFor"/>) runs in a
/// container of exactly <c>repository@digest</c> (pulled by digest when the engine does not hold it), with no network
/// and a deadline; exit 0 passes. Every verdict, passed or not, is recorded for that digest in the
/// <see cref="VerifiedStore"/>: a later verify of the same repository replaces it.
/// </summary>
public sealed class ImageVerifier(BuilderDocker docker, RegistryClient registry, VerifiedStore store, PromotionOptions options, NamingOptions naming, TimeProvider time)
{
    /// <summary>Verifies <paramref name="path"/>; <paramref name="digest"/> is the one just pushed, or null to ask the registry what testing is now.</summary>
    public async Task<VerifyResult> VerifyAsync(string path, string? digest, CancellationToken ct)
    {
        var repository = Repository(naming, path);
        if (digest is null)
        {
            var manifest = await registry.GetManifestAsync(NameInRegistry(naming, path), TagPolicy.Testing, ct).ConfigureAwait(false);
            if (manifest is null)
            {
                return new VerifyResult(path, repository, string.Empty, false, $"{repository}:{TagPolicy.Testing} is not in the registry (build and push it first)");
            }

            digest = manifest.Digest;
        }

        var command = options.CommandFor(path);
        string detail;
        bool passed;
        try
        {
            await using var hold = await docker.HoldImagesAsync(ct).ConfigureAwait(false); // no prune between the pull and the probe
            await docker.EnsureImageAsync(repository, digest, ct).ConfigureAwait(false);
            var (exit, tail) = await docker.RunProbeAsync($"{repository}@{digest}", command, options.VerifyTimeout, ct).ConfigureAwait(false);
            passed = exit == 0;
            var said = tail.Count > 0 ? $": {RegistryClient.Safe(tail[^1])}" : string.Empty;
            detail = exit is null
                ? $"the probe ({Describe(command)}) did not finish within {options.VerifyTimeout.TotalSeconds:0.#} s"
                : $"the probe ({Describe(command)}) exited {exit}{(passed ? string.Empty : said)}";
        }
        catch (DockerOperationException ex)
        {
            passed = false;
            detail = RegistryClient.Safe(ex.Message);
        }
        catch (global::Docker.DotNet.DockerApiException ex)
        {
            // "no such image" and the like, outside BuilderDocker's own wrapping: a failed verify, said in one line
            passed = false;
            detail = RegistryClient.Safe($"Docker: {(int)ex.StatusCode} {ex.ResponseBody?.Trim() ?? ex.Message}");
        }

        store.Record(repository, new Verdict(digest, passed, time.GetUtcNow(), detail));
        return new VerifyResult(path, repository, digest, passed, detail);
    }

    /// <summary>registry/prefix-path, the image's repository without a tag.</summary>
    public static string Repository(NamingOptions naming, string path) => naming.Repository(path);

    /// <summary>The repository's name inside its registry (the part after "registry/").</summary>
    public static string NameInRegistry(NamingOptions naming, string path) => naming.Repository(path)[(naming.Registry.Length + 1)..];

    private static string Describe(IReadOnlyList<string> command) =>
        RegistryClient.Safe(string.Join(' ', command.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a)));
}
