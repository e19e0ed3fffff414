using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Cri;

namespace Toolforge.Agents.NodeAgent.Checks.Images;

/// <summary>
/// node.images (issue 27): the images the node's runtime holds — over CRI, ImageService.ListImages and the containers of
/// RuntimeService.ListContainers; with Docker, the Engine's /images/json and /containers/json?all=1 — each with the
/// repo digests it was pulled by and whether a container (running or not) was made from it. The list goes with every
/// report (<see cref="AgentState.SetImages"/>). Outside input, bounded: at most <see cref="ReportLimits.MaxNodeImages"/>
/// images (more: not sent at all, the check says so — a cut list would tell the registry's retention that the rest
/// are not held), names in their one form (<see cref="NodeImageNames"/>; see <see cref="Shape"/>).
/// ok: listed and sent; warning: listed, not sent (too many, too large, or something in no form the coordinator
/// takes); unknown: not listed this time. Either way the coordinator keeps the last list.
/// </summary>
internal sealed class NodeImagesCheck : PeriodicCheck
{
    public const string Check = "node.images";


    private readonly NodeImagesOptions _o;
    private readonly CriOptions? _cri;
    private readonly DockerOptions? _docker;

    public NodeImagesCheck(IOptions<NodeImagesOptions> options, CriOptions? cri, DockerOptions? docker, AgentState state, TimeProvider time, ILogger<NodeImagesCheck> logger)
        : base(state, time, logger)
    {
        _o = options.Value;
        _cri = cri;
        _docker = docker;
    }

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _o.Timeout;

    /// <summary>What one listing found: the images (ids and repo digests in their one form) and the names left out.</summary>
    public sealed record Listing(string Runtime, IReadOnlyList<NodeImage> Images, int LeftOut);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Listing listing;
        try
        {
            listing = _cri is not null ? await ListCriAsync(_cri, ct).ConfigureAwait(false) : await ListDockerAsync(_docker!, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && ex is Grpc.Core.RpcException or HttpRequestException or DockerApiException or JsonException or IOException or InvalidDataException)
        {
            var peer = _cri is not null ? CriRuntimeCheck.PeerName(_cri) : $"docker at {_docker!.Endpoint}";
            throw new PeerUnavailableException(peer, $"cannot list the images of {peer}: {Why(ex)}; the coordinator keeps the last list");
        }

        var bytes = listing.Images.Sum(i => (long)i.CalculateSize());
        var notSent = listing.Images.Count > ReportLimits.MaxNodeImages ? $"more than the {ReportLimits.MaxNodeImages} images a report carries"
            : bytes > MaxListBytes ? $"{bytes / 1024} KiB of names, more than the {MaxListBytes / (1024 * 1024)} MiB a report gives them"
            : listing.LeftOut > 0 ? $"{listing.LeftOut} id(s) or digest(s) in no form the coordinator takes (a list with a hole would say a held digest is not held)"
            : null;
        if (notSent is not null)
        {
            State.SetCheck(Check, CheckState.Warning, $"{listing.Images.Count} images in {listing.Runtime}: not sent, {notSent}; the coordinator keeps the last list", sw.Elapsed);
            return;
        }

        State.SetImages(listing.Images, Time.GetUtcNow());
        var inUse = listing.Images.Count(i => i.InUse);
        State.SetCheck(Check, CheckState.Ok, $"{listing.Images.Count} images in {listing.Runtime}, {inUse} in use", sw.Elapsed,
            values: new Dictionary<string, double> { ["images"] = listing.Images.Count, ["in_use"] = inUse }, quiet: true);
    }

    private static string Why(Exception ex) => ex is Grpc.Core.RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : ex.Message;

    private async Task<Listing> ListCriAsync(CriOptions o, CancellationToken ct)
    {
        using var client = new CriClient(o.Endpoint, o.CallTimeout);
        var deadline = DateTime.UtcNow + _o.Timeout; // one for the run's two calls
        var images = await client.Images.ListImagesAsync(new Cri.V1.ListImagesRequest(), deadline: deadline, cancellationToken: ct).ConfigureAwait(false);
        var containers = await client.Runtime.ListContainersAsync(new Cri.V1.ListContainersRequest(), deadline: deadline, cancellationToken: ct).ConfigureAwait(false);
        var used = containers.Containers.SelectMany(c => new[] { c.ImageRef, c.ImageId }).Where(x => x.Length > 0).ToHashSet(StringComparer.Ordinal);
        return Shape(o.Name, images.Images.Select(i => (i.Id, (IEnumerable<string>)i.RepoDigests)), used);
    }

    private async Task<Listing> ListDockerAsync(DockerOptions o, CancellationToken ct)
    {
        using var engine = new DockerEngine(o.Endpoint);
        var images = await engine.GetBoundedAsync("images/json", DockerJson.Default.ListDockerImage, DockerEngine.MaxAnswer, _o.Timeout, ct).ConfigureAwait(false);
        var containers = await engine.GetBoundedAsync("containers/json?all=true", DockerJson.Default.ListDockerContainer, DockerEngine.MaxAnswer, _o.Timeout, ct).ConfigureAwait(false);
        var used = containers.Select(c => c.ImageID ?? string.Empty).ToHashSet(StringComparer.Ordinal);
        return Shape("docker", images.Select(i => (i.Id, (IEnumerable<string>)(i.RepoDigests ?? []))), used);
    }

    /// <summary>The whole list's size in a report at most: a report is refused above 8 MiB, and it carries the checks too.</summary>
    public const int MaxListBytes = 4 * 1024 * 1024;

    /// <summary>
    /// The runtime's listing in the coordinator's forms. Nothing a runtime holds is dropped: a bare 64-hex id (as some
    /// runtimes give it) becomes sha256:…; a repo digest whose name is not in the form keeps its digest alone
    /// ("sha256:…"). What still cannot be said (another algorithm, an id of another form, more than 16 digests) makes
    /// the listing incomplete (<see cref="Listing.LeftOut"/> &gt; 0): it is then not sent at all, for a list with a hole
    /// would tell the registry's retention that a held digest is not held.
    /// </summary>
    public static Listing Shape(string runtime, IEnumerable<(string Id, IEnumerable<string> RepoDigests)> images, IReadOnlySet<string> used)
    {
        var result = new List<NodeImage>();
        var leftOut = 0;
        foreach (var (rawId, digests) in images)
        {
            var id = rawId.Length == 64 && rawId.All(char.IsAsciiHexDigitLower) ? "sha256:" + rawId : rawId;
            if (!NodeImageNames.IsImageId(id))
            {
                leftOut++;
                continue;
            }

            var image = new NodeImage { Id = id };
            foreach (var d in digests)
            {
                var kept = NodeImageNames.IsRepoDigest(d) ? d
                    : d.LastIndexOf('@') is var at and >= 0 && NodeImageNames.IsImageId(d[(at + 1)..]) ? d[(at + 1)..]
                    : null;
                if (kept is null || (image.RepoDigests.Count == ReportLimits.MaxRepoDigestsPerImage && !image.RepoDigests.Contains(kept)))
                {
                    leftOut++;
                    continue;
                }

                if (!image.RepoDigests.Contains(kept))
                {
                    image.RepoDigests.Add(kept);
                }
            }

            // In use: a container names it by id (image_id, image_ref) or by one of its repo digests.
            image.InUse = used.Contains(id) || used.Contains(rawId) || digests.Any(used.Contains);
            result.Add(image);
        }

        return new Listing(runtime, [.. result.OrderBy(i => i.Id, StringComparer.Ordinal)], leftOut);
    }
}
