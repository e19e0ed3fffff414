using Microsoft.Extensions.Options;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>
/// The daemon's verify right after its own pushes of <c>testing</c> (coordinator requests and builds from git): the
/// digest the push reported is probed and its verdict recorded, so `promote` can follow without a separate `verify`.
/// Also the daemon's promoter, for promotions requested through the coordinator (`agentctl promote`).
/// </summary>
public sealed class PostPushVerifier(BuilderDocker docker, IOptions<BuilderOptions> builder, IOptions<PromotionOptions> options, TimeProvider time) : IDisposable
{
    private readonly Lazy<RegistryClient> _registry = new(() =>
        new RegistryClient(builder.Value.Registry, docker.Credentials.GetValueOrDefault(builder.Value.Registry), options.Value.RegistryTimeout));

    /// <summary>A verifier for a build named by <paramref name="naming"/>; null when it does not push testing (nothing to verify).</summary>
    public ImageVerifier? For(NamingOptions naming) =>
        naming.Tag == TagPolicy.Testing && naming.Registry == builder.Value.Registry
            ? new ImageVerifier(docker, _registry.Value, new VerifiedStore(options.Value.StateFile), options.Value, naming, time)
            : null;

    /// <summary>The daemon's promoter (promotion requested through the coordinator), with the same registry client and verdicts.</summary>
    public Promoter Promoter(NamingOptions naming) => new(_registry.Value, new VerifiedStore(options.Value.StateFile), naming);

    /// <summary>The push decision of a security rebuild (issue 27) for a build named by <paramref name="naming"/>.</summary>
    public Build.PackageGate Gate(NamingOptions naming) => new(docker, _registry.Value, naming);

    /// <summary>The daemon's registry pruner (issue 27: `agentctl images prune`), with the same registry client.</summary>
    public Retention.RegistryPruner Pruner() => new(_registry.Value);

    /// <summary>
    /// Gives <paramref name="digest"/>, just pushed as testing of <paramref name="repository"/>, its history tag (the
    /// manifest copied under it: same digest, nothing uploaded), so the registry keeps a listable record of each build
    /// for `agentctl images prune`. Returns the tag.
    /// </summary>
    public async Task<string> TagHistoryAsync(NamingOptions naming, string path, string digest, CancellationToken ct)
    {
        var name = ImageVerifier.NameInRegistry(naming, path);
        var manifest = await _registry.Value.GetManifestAsync(name, digest, ct).ConfigureAwait(false)
            ?? throw new PromotionException($"{RegistryClient.Safe(naming.Repository(path))}@{digest} is not in the registry");
        var tag = Retention.HistoryTags.For(time.GetUtcNow(), digest);
        await _registry.Value.PutManifestAsync(name, tag, manifest, ct).ConfigureAwait(false);
        return tag;
    }

    public void Dispose()
    {
        if (_registry.IsValueCreated)
        {
            _registry.Value.Dispose();
        }
    }
}
