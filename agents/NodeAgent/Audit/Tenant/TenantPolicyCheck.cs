using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>
/// Defence in depth behind the admission webhooks: every running container that belongs to a pod must come from the
/// allowed registry (foreign-image) and run as the UID in its namespace's annotation (wrong-user; a container whose
/// user cannot be read is unknown-user, not a pass); exempt namespaces (kube-system, ...) are skipped. Pure rules in
/// <see cref="Judge"/>; the runtimes (<see cref="IPodContainerSource"/>: CRI, Docker) and the API around it.
/// </summary>
internal sealed class TenantPolicyCheck : PeriodicCheck, IUsesCluster
{
    public const string Check = "tenant.policy";
    public const string NamespaceLabel = "io.kubernetes.pod.namespace";
    public const string PodLabel = "io.kubernetes.pod.name";
    public const string ContainerLabel = "io.kubernetes.container.name";

    private readonly TenantPolicyOptions _o;
    private readonly IReadOnlyList<IPodContainerSource> _sources;
    private readonly ClusterView _cluster;

    public TenantPolicyCheck(IOptions<TenantPolicyOptions> options, ClusterView cluster, AgentState state, TimeProvider time, ILogger<TenantPolicyCheck> logger,
        IReadOnlyList<IPodContainerSource> sources)
        : base(state, time, logger)
    {
        _o = options.Value;
        _sources = sources;
        _cluster = cluster;
    }

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _sources.Count == 0 ? TimeSpan.FromSeconds(5) : _sources.Max(s => s.Timeout) * 2;

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var containers = new List<PodContainer>();
        foreach (var source in _sources)
        {
            containers.AddRange(await source.ListAsync(ct).ConfigureAwait(false)); // a source that cannot answer throws PeerUnavailableException
        }

        var findings = Judge(containers, ns => _cluster.NamespaceAnnotations(ns), _o);
        State.SetFindings(Check, findings);
        State.SetCheck(Check, findings.Count == 0 ? CheckState.Ok : CheckState.Warning,
            findings.Count == 0 ? $"{containers.Count} pod container(s) follow the policy" : $"{findings.Count} finding(s) in {containers.Count} pod container(s)",
            values: new Dictionary<string, double> { ["containers"] = containers.Count, ["findings"] = findings.Count });
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
                if (c.User is null)
                {
                    findings.Add(Make("unknown-user", subject, $"{subject}: cannot tell which user it runs as ({c.UserProblem}); namespace {c.Namespace} says {uid}", c));
                    continue;
                }

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
        f.Details["user"] = c.User ?? "?";
        if (c.Digest.Length > 0)
        {
            f.Details["digest"] = c.Digest;
        }
        return f;
    }
}
