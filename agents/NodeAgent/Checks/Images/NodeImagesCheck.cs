using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Checks.Images;

/// <summary>
/// node.images (issue 27): the images the node's runtime holds — over CRI, ImageService.ListImages and the containers of
/// RuntimeService.ListContainers; with Docker, the Engine's /images/json and /containers/json?all=1 — each with the
/// repo digests it was pulled by and whether a container (running or not) was made from it. The list goes with every
/// report (<see cref="AgentState.SetImages"/>). Outside input, bounded: at most <see cref="ReportLimits.MaxNodeImages"/>
/// images (more: not sent at all, the check says so — a cut list would tell the registry's retention that the rest
/// are not held), names in their one form (<see cref="NodeImageNames"/>; see <see cref="Shape"/>).
/// With NodeImages:Pods (the default) and the Kubernetes API as the cluster's source, the pods bound to this node are
/// read too: every digest a pod names (a container's status.imageID, an image pinned by digest in its spec) makes the
/// runtime's image pulled by it in use, and one the runtime does not hold goes in the report's pod_digests — the
/// registry's retention keeps both (T377854: a pod restarts only while its image can still be pulled). Without a
/// kubeconfig (a host that is no node yet) only the runtime is listed; a pod list that fails sends nothing.
/// ok: listed and sent; warning: listed, not sent (too many, too large, or something in no form the coordinator
/// takes); unknown: not listed this time. Either way the coordinator keeps the last list.
/// </summary>
internal sealed class NodeImagesCheck : PeriodicCheck
{
    public const string Check = "node.images";


    private readonly NodeImagesOptions _o;
    private readonly CriOptions? _cri;
    private readonly DockerOptions? _docker;
    private readonly NodePods? _pods;

    /// <summary>Where the pods bound to this node are read: the API client, the kubeconfig it needs, the node's name.</summary>
    public sealed record NodePods(KubeClient Client, string Kubeconfig, string Node);

    public NodeImagesCheck(IOptions<NodeImagesOptions> options, CriOptions? cri, DockerOptions? docker, AgentState state, TimeProvider time, ILogger<NodeImagesCheck> logger, NodePods? pods = null)
        : base(state, time, logger)
    {
        _o = options.Value;
        _cri = cri;
        _docker = docker;
        _pods = _o.Pods ? pods : null;
    }

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _o.Timeout;

    /// <summary>
    /// What one listing found: the images (ids and repo digests in their one form), the digests pods name that no image
    /// was pulled by, and the names left out.
    /// </summary>
    public sealed record Listing(string Runtime, IReadOnlyList<NodeImage> Images, int LeftOut)
    {
        public IReadOnlyList<string> PodDigests { get; init; } = [];

        /// <summary>Pods read (null: not read, no kubeconfig or NodeImages:Pods off).</summary>
        public int? Pods { get; init; }
    }

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

        if (await ListPodsAsync(ct).ConfigureAwait(false) is { } pods)
        {
            listing = WithPods(listing, pods);
        }

        var bytes = listing.Images.Sum(i => (long)i.CalculateSize()) + listing.PodDigests.Sum(d => (long)d.Length + 2);
        var notSent = listing.Images.Count > ReportLimits.MaxNodeImages ? $"more than the {ReportLimits.MaxNodeImages} images a report carries"
            : listing.PodDigests.Count > ReportLimits.MaxNodeImages ? $"pods name {listing.PodDigests.Count} digests the runtime does not hold, more than the {ReportLimits.MaxNodeImages} a report carries"
            : bytes > MaxListBytes ? $"{bytes / 1024} KiB of names, more than the {MaxListBytes / (1024 * 1024)} MiB a report gives them"
            : listing.LeftOut > 0 ? $"{listing.LeftOut} id(s) or digest(s) (of the runtime or of pods) in no form the coordinator takes (a list with a hole would say a held digest is not held)"
            : null;
        if (notSent is not null)
        {
            State.SetCheck(Check, CheckState.Warning, $"{listing.Images.Count} images in {listing.Runtime}: not sent, {notSent}; the coordinator keeps the last list", sw.Elapsed);
            return;
        }

        State.SetImages(listing.Images, Time.GetUtcNow(), listing.PodDigests);
        var inUse = listing.Images.Count(i => i.InUse);
        var values = new Dictionary<string, double> { ["images"] = listing.Images.Count, ["in_use"] = inUse };
        var podsSaid = string.Empty;
        if (listing.Pods is { } podCount)
        {
            values["pods"] = podCount;
            values["pod_digests_not_held"] = listing.PodDigests.Count;
            podsSaid = listing.PodDigests.Count == 0 ? $"; {podCount} pod(s) bound here" : $"; {podCount} pod(s) bound here name {listing.PodDigests.Count} digest(s) it does not hold";
        }

        State.SetCheck(Check, CheckState.Ok, $"{listing.Images.Count} images in {listing.Runtime}, {inUse} in use{podsSaid}", sw.Elapsed, values: values, quiet: true);
    }

    // The pods bound to this node, or null when they are not read (off, or no kubeconfig: a host that is no node yet).
    private async Task<IReadOnlyList<KubePod>?> ListPodsAsync(CancellationToken ct)
    {
        if (_pods is null || !File.Exists(_pods.Kubeconfig))
        {
            return null;
        }

        try
        {
            return await _pods.Client.ListNodePodsAsync(_pods.Node, PodPageSize, _o.MaxPods, $"{NodeImagesOptions.Section}:{nameof(NodeImagesOptions.MaxPods)}", ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && (KubeClient.IsApiFailure(ex) || ex is TooManyPodsException))
        {
            throw new PeerUnavailableException("the Kubernetes API", $"cannot list the pods bound to {_pods.Node}: {_pods.Client.Why(ex)}; the images are not sent (a pod's image could be missed), the coordinator keeps the last list");
        }
    }

    private const int PodPageSize = 500;

    /// <summary>
    /// The listing with what the pods name: each digest a pod names (<see cref="PodReferences"/>) marks the runtime's
    /// images pulled by it (or with it as id) in use; those no image has go to <see cref="Listing.PodDigests"/>, one entry a
    /// digest (its first name in the coordinator's form, else the digest alone). A reference in no form is left out.
    /// </summary>
    public static Listing WithPods(Listing listing, IReadOnlyList<KubePod> pods)
    {
        var leftOut = 0;
        var named = new Dictionary<string, string>(StringComparer.Ordinal); // digest -> entry
        foreach (var reference in pods.SelectMany(PodReferences))
        {
            if (Entry(reference) is not { } entry)
            {
                leftOut++;
                continue;
            }

            named.TryAdd(NodeImageNames.Split(entry).Digest, entry);
        }

        var images = new List<NodeImage>(listing.Images.Count);
        foreach (var image in listing.Images)
        {
            var digests = image.RepoDigests.Select(r => NodeImageNames.Split(r).Digest).Append(image.Id).Distinct(StringComparer.Ordinal).ToList();
            var hit = digests.Where(named.ContainsKey).ToList();
            if (hit.Count == 0)
            {
                images.Add(image);
                continue;
            }

            hit.ForEach(d => named.Remove(d));
            var used = image.Clone();
            used.InUse = true;
            images.Add(used);
        }

        return listing with
        {
            Images = images,
            LeftOut = listing.LeftOut + leftOut,
            PodDigests = [.. named.Values.Order(StringComparer.Ordinal)],
            Pods = pods.Count,
        };
    }

    /// <summary>
    /// The image references of a pod that name a digest: every container's (init and ephemeral too) status.imageID, and
    /// every spec image pinned by digest. A spec image by tag names no digest (the kubelet resolves it at pull time) and is
    /// not returned; neither is an empty imageID (a container not started yet).
    /// </summary>
    public static IEnumerable<string> PodReferences(KubePod pod)
    {
        var spec = pod.Spec;
        var status = pod.Status;
        var images = (spec?.Containers ?? []).Concat(spec?.InitContainers ?? []).Concat(spec?.EphemeralContainers ?? [])
            .Select(c => c.Image).Where(i => i?.Contains('@', StringComparison.Ordinal) == true);
        var ids = (status?.ContainerStatuses ?? []).Concat(status?.InitContainerStatuses ?? []).Concat(status?.EphemeralContainerStatuses ?? [])
            .Select(c => c.ImageID).Where(i => !string.IsNullOrEmpty(i));
        return images.Concat(ids).Select(i => i!);
    }

    /// <summary>
    /// A pod's reference in the coordinator's form: a scheme ("docker-pullable://", "docker://") dropped; "name@sha256:…"
    /// kept whole when the name is in the form, else its digest alone; a bare "sha256:…" (an image id) kept. Null: no
    /// sha256 digest in it (another algorithm, or not a reference) — the listing then has a hole and is not sent.
    /// </summary>
    public static string? Entry(string reference)
    {
        var r = reference.IndexOf("://", StringComparison.Ordinal) is var scheme and >= 0 ? reference[(scheme + 3)..] : reference;
        if (NodeImageNames.IsImageId(r) || NodeImageNames.IsRepoDigest(r))
        {
            return r;
        }

        var at = r.LastIndexOf('@');
        return at >= 0 && NodeImageNames.IsImageId(r[(at + 1)..]) ? r[(at + 1)..] : null;
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
