using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// The parts of a Service the audits need. <see cref="ClusterIP"/>, <see cref="ExternalIPs"/> and
/// <see cref="LoadBalancerIPs"/> are the IPv4 ones (what iptables mode and the `ip kube-proxy` table handle); the
/// IPv6 ones are in <see cref="IPv6"/>.
/// </summary>
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

    /// <summary>The Service's IPv6 addresses (dual-stack or IPv6-only), for the `ip6 kube-proxy` table.</summary>
    public FamilyAddresses IPv6 { get; init; } = FamilyAddresses.None;

    /// <summary>spec.loadBalancerSourceRanges (nftables mode: the firewall- chain).</summary>
    public IReadOnlyList<string> SourceRanges { get; init; } = [];

    /// <summary>sessionAffinity ClientIP.</summary>
    public bool ClientIPAffinity { get; init; }

    /// <summary>The addresses of one family: its cluster IP (null when headless or absent), external and LB IPs.</summary>
    public sealed record FamilyAddresses(string? ClusterIP, IReadOnlyList<string> ExternalIPs, IReadOnlyList<string> LoadBalancerIPs)
    {
        public static readonly FamilyAddresses None = new(null, [], []);
    }

    /// <summary>
    /// kube-proxy's chain hashes of each port (and, for an unnamed port, the hash kube-proxy up to 1.9 used), made
    /// once per Service object: a spec is replaced, not changed, when its Service changes, so an audit every 10 s of
    /// 10,000 Services hashes only the Services that changed since the last one.
    /// </summary>
    internal (Audit.Iptables.ChainHash Hash, Audit.Iptables.ChainHash? Old)[] KubeProxyHashes => _hashes.Get(this);

    private readonly HashCache _hashes = new();

    /// <summary>Not part of what a spec is: equal to any other (record equality), and checked against the spec it serves (a <c>with</c> copy shares it).</summary>
    private sealed class HashCache
    {
        private sealed record Entry(string Namespace, string Name, IReadOnlyList<ServicePortSpec> Ports, (Audit.Iptables.ChainHash, Audit.Iptables.ChainHash?)[] Hashes);

        private Entry? _entry;

        public (Audit.Iptables.ChainHash, Audit.Iptables.ChainHash?)[] Get(ServiceSpec s)
        {
            if (_entry is { } e && ReferenceEquals(e.Namespace, s.Namespace) && ReferenceEquals(e.Name, s.Name) && ReferenceEquals(e.Ports, s.Ports))
            {
                return e.Hashes;
            }

            var hashes = s.Ports.Select(p => Audit.Iptables.KubeProxyNames.PortHashes(s.Namespace, s.Name, p)).ToArray();
            _entry = new Entry(s.Namespace, s.Name, s.Ports, hashes);
            return hashes;
        }

        public override bool Equals(object? obj) => obj is HashCache;

        public override int GetHashCode() => 0;
    }

    public FamilyAddresses Family(bool ipv6) => ipv6 ? IPv6 : new(IsHeadless ? null : ClusterIP, ExternalIPs, LoadBalancerIPs);

    private static bool V6(string ip) => ip.Contains(':', StringComparison.Ordinal);

    public static ServiceSpec From(KubeService s)
    {
        // Every address as kube-proxy reads it (172.30.0.041 is 172.30.0.41): the audits compare canonical forms.
        var clusterIPs = (s.Spec?.ClusterIPs is { Count: > 0 } list ? list : s.Spec?.ClusterIP is { } one ? [one] : []).ConvertAll(IPAddresses.Canonical);
        var headless = s.Spec?.ClusterIP == "None";
        var external = (s.Spec?.ExternalIPs ?? []).ConvertAll(IPAddresses.Canonical);
        var lb = (s.Status?.LoadBalancer?.Ingress ?? []).Select(i => i.Ip).Where(ip => !string.IsNullOrEmpty(ip)).Select(ip => IPAddresses.Canonical(ip!)).ToList();
        return new ServiceSpec(
            s.Metadata?.Namespace ?? "default",
            s.Metadata?.Name ?? string.Empty,
            s.Spec?.Type ?? "ClusterIP",
            clusterIPs.FirstOrDefault(ip => !V6(ip)) is { } v4 ? v4 : headless ? "None" : null,
            (s.Spec?.Ports ?? []).Select(p => new ServicePortSpec(p.Name ?? string.Empty, p.Port ?? 0, (p.Protocol ?? "TCP").ToUpperInvariant(), p.NodePort ?? 0)).ToList(),
            external.Where(ip => !V6(ip)).ToList(),
            lb.Where(ip => !V6(ip)).ToList(),
            s.Spec?.InternalTrafficPolicy == "Local",
            s.Spec?.ExternalTrafficPolicy == "Local")
        {
            IPv6 = new FamilyAddresses(headless ? null : clusterIPs.FirstOrDefault(V6), external.Where(V6).ToList(), lb.Where(V6).ToList()),
            SourceRanges = s.Spec?.LoadBalancerSourceRanges?.ToList() ?? [],
            ClientIPAffinity = s.Spec?.SessionAffinity == "ClientIP",
        };
    }
}
