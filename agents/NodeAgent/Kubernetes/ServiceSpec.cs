using k8s.Models;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>The parts of a Service the audit needs.</summary>
public sealed record ServiceSpec(
    string Namespace,
    string Name,
    string Type,
    string? ClusterIP,
    IReadOnlyList<ServicePortSpec> Ports,
    IReadOnlyList<string> ExternalIPs,
    IReadOnlyList<string> LoadBalancerIPs,
    bool InternalTrafficLocal,
    bool ExternalTrafficLocal)
{
    public string Key => $"{Namespace}/{Name}";

    public bool IsHeadless => ClusterIP is null or "" or "None";

    public static ServiceSpec From(V1Service s) => new(
        s.Metadata?.NamespaceProperty ?? "default",
        s.Metadata?.Name ?? string.Empty,
        s.Spec?.Type ?? "ClusterIP",
        (s.Spec?.ClusterIPs?.FirstOrDefault(ip => !ip.Contains(':', StringComparison.Ordinal)) ?? s.Spec?.ClusterIP) is { } ip && !ip.Contains(':', StringComparison.Ordinal) ? ip : s.Spec?.ClusterIP == "None" ? "None" : null,
        (s.Spec?.Ports ?? []).Select(p => new ServicePortSpec(p.Name ?? string.Empty, p.Port, (p.Protocol ?? "TCP").ToUpperInvariant(), p.NodePort ?? 0)).ToList(),
        (s.Spec?.ExternalIPs ?? []).Where(ip => !ip.Contains(':', StringComparison.Ordinal)).ToList(),
        (s.Status?.LoadBalancer?.Ingress ?? []).Select(i => i.Ip).Where(ip => !string.IsNullOrEmpty(ip) && !ip.Contains(':', StringComparison.Ordinal)).ToList(),
        s.Spec?.InternalTrafficPolicy == "Local",
        s.Spec?.ExternalTrafficPolicy == "Local");
}
