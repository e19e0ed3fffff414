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
/// are not held), names in their one form (<see cref="NodeImageNames"/>; others left out and counted).
/// ok: listed; warning: listed, some names left out; unknown: not listed this time (the coordinator keeps the last list).
/// </summary>
internal sealed class NodeImagesCheck : PeriodicCheck
{
    public const string Check = "node.images";

    /// <summary>The Docker Engine's answers are read up to this many bytes.</summary>
    public const int MaxDockerAnswer = 32 * 1024 * 1024;

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

        if (listing.Images.Count > ReportLimits.MaxNodeImages)
        {
            State.SetCheck(Check, CheckState.Unknown, $"{listing.Images.Count} images in {listing.Runtime}, more than the {ReportLimits.MaxNodeImages} a report carries: not sent (the coordinator keeps the last list)", sw.Elapsed);
            return;
        }

        State.SetImages(listing.Images, Time.GetUtcNow());
        var inUse = listing.Images.Count(i => i.InUse);
        var said = $"{listing.Images.Count} images in {listing.Runtime}, {inUse} in use";
        State.SetCheck(Check, listing.LeftOut > 0 ? CheckState.Warning : CheckState.Ok,
            listing.LeftOut > 0 ? $"{said}; {listing.LeftOut} name(s) not in the form the coordinator takes were left out" : said, sw.Elapsed,
            values: new Dictionary<string, double> { ["images"] = listing.Images.Count, ["in_use"] = inUse }, quiet: true);
    }

    private static string Why(Exception ex) => ex is Grpc.Core.RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : ex.Message;

    private async Task<Listing> ListCriAsync(CriOptions o, CancellationToken ct)
    {
        using var client = new CriClient(o.Endpoint, o.CallTimeout);
        var images = await client.Images.ListImagesAsync(new Cri.V1.ListImagesRequest(), deadline: DateTime.UtcNow + _o.Timeout, cancellationToken: ct).ConfigureAwait(false);
        var containers = await client.Runtime.ListContainersAsync(new Cri.V1.ListContainersRequest(), deadline: DateTime.UtcNow + _o.Timeout, cancellationToken: ct).ConfigureAwait(false);
        var used = containers.Containers.Select(c => c.ImageRef).ToHashSet(StringComparer.Ordinal);
        return Shape(o.Name, images.Images.Select(i => (i.Id, (IEnumerable<string>)i.RepoDigests)), used);
    }

    private async Task<Listing> ListDockerAsync(DockerOptions o, CancellationToken ct)
    {
        using var engine = new DockerEngine(o.Endpoint);
        var images = await engine.GetBoundedAsync("images/json", DockerJson.Default.ListDockerImage, MaxDockerAnswer, _o.Timeout, ct).ConfigureAwait(false);
        var containers = await engine.GetBoundedAsync("containers/json?all=true", DockerJson.Default.ListDockerContainer, MaxDockerAnswer, _o.Timeout, ct).ConfigureAwait(false);
        var used = containers.Select(c => c.ImageID ?? string.Empty).ToHashSet(StringComparer.Ordinal);
        return Shape("docker", images.Select(i => (i.Id, (IEnumerable<string>)(i.RepoDigests ?? []))), used);
    }

    /// <summary>The runtime's listing in the coordinator's forms: ids and repo digests checked, at most 16 digests an image.</summary>
    public static Listing Shape(string runtime, IEnumerable<(string Id, IEnumerable<string> RepoDigests)> images, IReadOnlySet<string> usedIds)
    {
        var result = new List<NodeImage>();
        var leftOut = 0;
        foreach (var (id, digests) in images)
        {
            if (!NodeImageNames.IsImageId(id))
            {
                leftOut++;
                continue;
            }

            var image = new NodeImage { Id = id, InUse = usedIds.Contains(id) };
            foreach (var d in digests.Distinct(StringComparer.Ordinal))
            {
                if (!NodeImageNames.IsRepoDigest(d) || image.RepoDigests.Count == ReportLimits.MaxRepoDigestsPerImage)
                {
                    leftOut++;
                    continue;
                }

                image.RepoDigests.Add(d);
            }

            result.Add(image);
        }

        return new Listing(runtime, [.. result.OrderBy(i => i.Id, StringComparer.Ordinal)], leftOut);
    }
}
