using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>What one promotion did: promoted (or already there), or refused/failed with why.</summary>
public sealed record PromoteResult(string Path, string Repository, bool Ok, string Digest, string Detail);

/// <summary>
/// Points an image's <c>latest</c> at exactly its verified <c>testing</c> digest by copying the manifest: the
/// manifest <c>testing</c> names is read, its digest must be the one the last verify of this repository passed, and
/// those exact bytes are put under <c>latest</c> (same digest; no blob uploaded, nothing rebuilt). Refused, in one
/// line: an image never verified, one whose verify failed, one whose testing moved since it was verified, one with
/// no testing in the registry.
/// </summary>
public sealed class Promoter(RegistryClient registry, VerifiedStore store, NamingOptions naming)
{
    /// <summary>The decision without the registry: why <paramref name="verdict"/> does not allow promoting <paramref name="testingDigest"/>, or null when it does.</summary>
    public static string? Refusal(Verdict? verdict, string? testingDigest)
    {
        if (testingDigest is null)
        {
            return $"there is no {TagPolicy.Testing} in the registry to promote";
        }

        if (verdict is null)
        {
            return $"never verified (run verify first): {TagPolicy.Testing} is {testingDigest}";
        }

        if (verdict.Digest != testingDigest)
        {
            return $"{TagPolicy.Testing} is now {testingDigest}, but the digest verified was {verdict.Digest}: verify it first";
        }

        return verdict.Passed ? null : $"its verify failed ({verdict.At:yyyy-MM-dd HH:mm:ss}Z, {verdict.Digest}): {verdict.Detail}";
    }

    public async Task<PromoteResult> PromoteAsync(string path, CancellationToken ct)
    {
        var repository = ImageVerifier.Repository(naming, path);
        var name = ImageVerifier.NameInRegistry(naming, path);
        try
        {
            var testing = await registry.GetManifestAsync(name, TagPolicy.Testing, ct).ConfigureAwait(false);
            var verdict = store.Read().GetValueOrDefault(repository);
            if (Refusal(verdict, testing?.Digest) is { } refusal)
            {
                return new PromoteResult(path, repository, false, testing?.Digest ?? string.Empty, refusal);
            }

            var latest = await registry.GetManifestAsync(name, TagPolicy.Latest, ct).ConfigureAwait(false);
            if (latest?.Digest == testing!.Digest)
            {
                return new PromoteResult(path, repository, true, testing.Digest, $"{TagPolicy.Latest} is already {testing.Digest}");
            }

            await registry.PutManifestAsync(name, TagPolicy.Latest, testing, ct).ConfigureAwait(false);
            return new PromoteResult(path, repository, true, testing.Digest,
                $"{TagPolicy.Latest} → {testing.Digest}{(latest is null ? string.Empty : $" (was {latest.Digest})")}");
        }
        catch (PromotionException ex)
        {
            return new PromoteResult(path, repository, false, string.Empty, ex.Message);
        }
    }

    /// <summary>The images of <paramref name="graph"/> whose last verify passed (in graph order), for --all-verified.</summary>
    public IReadOnlyList<string> Verified(ImageGraph graph)
    {
        var verdicts = store.Read();
        return graph.Images.Select(i => i.Path)
            .Where(p => verdicts.TryGetValue(ImageVerifier.Repository(naming, p), out var v) && v.Passed).ToList();
    }
}
