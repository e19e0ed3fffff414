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

        /// <summary>Image references of pods that name no sha256 digest (skipped: nothing the registry's retention deletes).</summary>
        public int Unnamed { get; init; }

        /// <summary>The runtime runs containers of Kubernetes pods (CRI: any container; Docker: the kubelet's label).</summary>
        public bool RunsPods { get; init; }
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

        var now = Time.GetUtcNow();
        var (pods, podsProblem) = await ListPodsAsync(ct).ConfigureAwait(false);
        // Without a listing now, the last one that went (kept with the agent's state) goes again with its own time: the coordinator judges its age.
        var (podDigests, podsAt) = State.PodListing();
        if (pods is not null)
        {
            listing = WithPods(listing, pods);
            podDigests = listing.PodDigests;
            podsAt = now;
        }

        var bytes = listing.Images.Sum(i => (long)i.CalculateSize()) + podDigests.Sum(d => (long)d.Length + 2);
        var notSent = listing.Images.Count > ReportLimits.MaxNodeImages ? $"more than the {ReportLimits.MaxNodeImages} images a report carries"
            : podDigests.Count > ReportLimits.MaxNodeImages ? $"pods name {podDigests.Count} digests the runtime does not hold, more than the {ReportLimits.MaxNodeImages} a report carries"
            : bytes > MaxListBytes ? $"{bytes / 1024} KiB of names, more than the {MaxListBytes / (1024 * 1024)} MiB a report gives them"
            : listing.LeftOut > 0 ? $"{listing.LeftOut} id(s) or digest(s) of the runtime in no form the coordinator takes (a list with a hole would say a held digest is not held)"
            : null;
        if (notSent is not null)
        {
            State.SetCheck(Check, CheckState.Warning, $"{listing.Images.Count} images in {listing.Runtime}: not sent, {notSent}; the coordinator keeps the last list", sw.Elapsed);
            return;
        }

        State.SetImages(listing.Images, now, podDigests, podsAt, listing.RunsPods);
        var inUse = listing.Images.Count(i => i.InUse);
        var values = new Dictionary<string, double> { ["images"] = listing.Images.Count, ["in_use"] = inUse };
        var said = $"{listing.Images.Count} images in {listing.Runtime}, {inUse} in use";
        var state = CheckState.Ok;
        if (listing.Pods is { } podCount)
        {
            values["pods"] = podCount;
            values["pod_digests_not_held"] = podDigests.Count;
            said += podDigests.Count == 0 ? $"; {podCount} pod(s) bound here" : $"; {podCount} pod(s) bound here name {podDigests.Count} digest(s) it does not hold";
            if (listing.Unnamed > 0)
            {
                values["pod_references_unnamed"] = listing.Unnamed;
                said += $"; {listing.Unnamed} pod image reference(s) name no sha256 digest (nothing the registry's retention deletes)";
            }
        }
        else if (podsProblem is not null && (listing.RunsPods || podsAt is not null))
        {
            // The runtime list goes; the pods' digests of the last listing go with their own time, which the coordinator judges.
            state = CheckState.Warning;
            said += $"; {podsProblem}; " + (podsAt is { } last
                ? $"the digests pods named at {last.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)} are sent again (the registry's retention refuses once they are older than Coordinator:ImageListMaxAge)"
                : "the registry's retention refuses while they are not listed");
        }

        State.SetCheck(Check, state, said, sw.Elapsed, values: values, quiet: state == CheckState.Ok);
    }

    // The pods bound to this node (not those that ended: Succeeded and Failed pods never start again), or null with why
    // not: not read here (off, not the API, no kubeconfig: a host that is no node yet) or the API failed. A Node the API
    // does not have is a failure: a wrong node name would list no pod and look complete.
    private async Task<(IReadOnlyList<KubePod>? Pods, string? Problem)> ListPodsAsync(CancellationToken ct)
    {
        if (_pods is null)
        {
            return (null, _o.Pods ? "the pods bound here are not read (NodeAgent:Kubernetes does not read the API)" : "the pods bound here are not read (NodeAgent:Images:Pods is off)");
        }

        if (!File.Exists(_pods.Kubeconfig))
        {
            return (null, $"the pods bound here are not read (no kubeconfig at {_pods.Kubeconfig})");
        }

        try
        {
            try
            {
                using var deadline = _pods.Client.Deadline(ct);
                await _pods.Client.Api.GetAsync($"/api/v1/nodes/{Uri.EscapeDataString(_pods.Node)}", KubeJson.Default.KubeNode, deadline.Token).ConfigureAwait(false);
            }
            catch (KubeApiException ex) when (ex.StatusCode == 404)
            {
                return (null, $"cannot list the pods bound to {_pods.Node}: the Kubernetes API has no Node of that name (NodeAgent:NodeName must be the Node's name)");
            }

            var pods = await _pods.Client.ListNodePodsAsync(_pods.Node, PodPageSize, _o.MaxPods, $"{NodeImagesOptions.Section}:{nameof(NodeImagesOptions.MaxPods)}", ct,
                keep: p => p.Status?.Phase is not ("Succeeded" or "Failed")).ConfigureAwait(false);
            return (pods, null);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && (KubeClient.IsApiFailure(ex) || ex is TooManyPodsException))
        {
            return (null, $"cannot list the pods bound to {_pods.Node}: {_pods.Client.Why(ex)}");
        }
    }

    // Small pages: a pod's object is read whole (its labels and annotations too) before the images are taken from it.
    private const int PodPageSize = 100;

    /// <summary>
    /// The listing with what the pods name: each digest a pod names (<see cref="PodReferences"/>) marks the runtime's
    /// images pulled by it (or with it as id) in use; those no image has go to <see cref="Listing.PodDigests"/>, one entry a
    /// digest (its first name in the coordinator's form, else the digest alone). A reference with no sha256 digest in it
    /// (another algorithm, or no reference at all: the API server does not check image names) names nothing the registry's
    /// retention deletes: it is counted (<see cref="Listing.Unnamed"/>) and skipped, so a tenant's malformed pod cannot
    /// stop the node's list.
    /// </summary>
    public static Listing WithPods(Listing listing, IReadOnlyList<KubePod> pods)
    {
        var unnamed = 0;
        var named = new Dictionary<string, string>(StringComparer.Ordinal); // digest -> entry
        foreach (var reference in pods.SelectMany(PodReferences))
        {
            if (Entry(reference) is not { } entry)
            {
                unnamed++;
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
            Unnamed = unnamed,
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
    /// kept whole when the name is in the form, else its digest alone; a bare "sha256:…" or 64-hex id kept (an image id:
    /// it protects nothing in the registry, but marks the runtime's image in use). Null: no sha256 digest in it.
    /// </summary>
    public static string? Entry(string reference)
    {
        var r = reference.IndexOf("://", StringComparison.Ordinal) is var scheme and >= 0 ? reference[(scheme + 3)..] : reference;
        if (r.Length == 64 && r.All(char.IsAsciiHexDigitLower))
        {
            r = "sha256:" + r; // an id as some runtimes give it, without its algorithm
        }

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
        // Every CRI container is a pod's (the kubelet is CRI's client).
        return Shape(o.Name, images.Images.Select(i => (i.Id, (IEnumerable<string>)i.RepoDigests)), used) with { RunsPods = containers.Containers.Count > 0 };
    }

    private async Task<Listing> ListDockerAsync(DockerOptions o, CancellationToken ct)
    {
        using var engine = new DockerEngine(o.Endpoint);
        var images = await engine.GetBoundedAsync("images/json", DockerJson.Default.ListDockerImage, DockerEngine.MaxAnswer, _o.Timeout, ct).ConfigureAwait(false);
        var containers = await engine.GetBoundedAsync("containers/json?all=true", DockerJson.Default.ListDockerContainer, DockerEngine.MaxAnswer, _o.Timeout, ct).ConfigureAwait(false);
        var used = containers.Select(c => c.ImageID ?? string.Empty).ToHashSet(StringComparer.Ordinal);
        // A pod's containers carry the kubelet's label (dockershim, cri-dockerd).
        return Shape("docker", images.Select(i => (i.Id, (IEnumerable<string>)(i.RepoDigests ?? []))), used)
            with { RunsPods = containers.Any(c => c.Labels?.ContainsKey(PodUidLabel) == true) };
    }

    /// <summary>The label the kubelet puts on every container of a pod.</summary>
    public const string PodUidLabel = "io.kubernetes.pod.uid";

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
