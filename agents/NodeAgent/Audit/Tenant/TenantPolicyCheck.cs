using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>A running pod container as Docker sees it.</summary>
public sealed record PodContainer(string Id, string Namespace, string Pod, string Container, string Image, string User);

/// <summary>
/// Defence in depth behind the admission webhooks: every running container that belongs to a pod must come from the
/// allowed registry (foreign-image) and run as the UID in its namespace's annotation (wrong-user); exempt namespaces
/// (kube-system, ...) are skipped. Pure rules in <see cref="Judge"/>; Docker and the API around it.
/// </summary>
internal sealed class TenantPolicyCheck : PeriodicCheck
{
    public const string Check = "tenant.policy";
    public const string NamespaceLabel = "io.kubernetes.pod.namespace";
    public const string PodLabel = "io.kubernetes.pod.name";
    public const string ContainerLabel = "io.kubernetes.container.name";

    private readonly TenantPolicyOptions _o;
    private readonly DockerOptions _docker;
    private readonly ClusterView _cluster;

    public TenantPolicyCheck(IOptions<NodeAgentOptions> options, ClusterView cluster, AgentState state, TimeProvider time, ILogger<TenantPolicyCheck> logger)
        : base(state, time, logger)
    {
        _o = options.Value.TenantPolicy;
        _docker = options.Value.Docker;
        _cluster = cluster;
    }

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _docker.ListTimeout * 4;

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        List<PodContainer> containers;
        try
        {
            containers = await ListAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Net.Sockets.SocketException or IOException or DockerApiException)
        {
            throw new PeerUnavailableException(DockerCheck.PeerName(_docker.Endpoint),
                $"cannot list containers: {PeerErrors.Describe(ex, "Docker", "dockerd", _docker.Endpoint).Message}", ex);
        }

        var findings = Judge(containers, ns => _cluster.NamespaceAnnotations(ns), _o);
        State.SetFindings(Check, findings);
        State.SetCheck(Check, findings.Count == 0 ? CheckState.Ok : CheckState.Warning,
            findings.Count == 0 ? $"{containers.Count} pod container(s) follow the policy" : $"{findings.Count} finding(s) in {containers.Count} pod container(s)",
            values: new Dictionary<string, double> { ["containers"] = containers.Count, ["findings"] = findings.Count });
    }

    private async Task<List<PodContainer>> ListAsync(CancellationToken ct)
    {
        using var client = new DockerClientBuilder().WithEndpoint(new Uri(_docker.Endpoint)).WithTimeout(_docker.ListTimeout).Build();
        var list = await client.Containers.ListContainersAsync(new ContainersListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [NamespaceLabel] = true } },
        }, ct).ConfigureAwait(false);
        var containers = new List<PodContainer>();
        foreach (var c in list)
        {
            if (c.Labels.TryGetValue(ContainerLabel, out var name) && name == "POD")
            {
                continue; // the pause container
            }

            var inspected = await client.Containers.InspectContainerAsync(c.ID, ct).ConfigureAwait(false);
            containers.Add(new PodContainer(c.ID, c.Labels[NamespaceLabel], (c.Labels.TryGetValue(PodLabel, out var pod) ? pod : "?"), name ?? "?",
                inspected.Config?.Image ?? c.Image, inspected.Config?.User ?? string.Empty));
        }

        return containers;
    }

    public static List<Finding> Judge(IEnumerable<PodContainer> containers, Func<string, IReadOnlyDictionary<string, string>> annotations, TenantPolicyOptions o)
    {
        var findings = new List<Finding>();
        foreach (var c in containers)
        {
            if (o.ExemptNamespaces.Contains(c.Namespace, StringComparer.Ordinal))
            {
                continue;
            }

            var subject = $"{c.Namespace}/{c.Pod}/{c.Container}";
            if (!c.Image.StartsWith(o.AllowedRegistryPrefix, StringComparison.Ordinal))
            {
                findings.Add(Make("foreign-image", subject, $"{subject} runs {c.Image}, not from {o.AllowedRegistryPrefix}", c));
            }

            if (annotations(c.Namespace).TryGetValue(o.RunAsUserAnnotation, out var uid))
            {
                var user = c.User.Split(':')[0];
                if (user != uid.Trim())
                {
                    findings.Add(Make("wrong-user", subject,
                        $"{subject} runs as user \"{(user.Length == 0 ? "root (unset)" : user)}\", but namespace {c.Namespace} says {uid}", c));
                }
            }
        }

        return findings;
    }

    private static Finding Make(string kind, string subject, string message, PodContainer c)
    {
        var f = new Finding { Kind = kind, Subject = subject, Message = message, Severity = Severity.Warning, Check = Check };
        f.Details["container_id"] = c.Id[..Math.Min(12, c.Id.Length)];
        f.Details["image"] = c.Image;
        f.Details["user"] = c.User;
        return f;
    }
}
