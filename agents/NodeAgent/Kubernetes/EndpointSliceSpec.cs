using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>The parts of an EndpointSlice the audits need (IPv4 and IPv6 slices; FQDN slices are left out).</summary>
public sealed record EndpointSliceSpec(string Namespace, string ServiceName, IReadOnlyList<EndpointSpec> Endpoints, IReadOnlyList<ServicePortSpec> Ports)
{
    public const string ServiceNameLabel = "kubernetes.io/service-name";

    public bool IsIPv6 { get; init; }

    public static EndpointSliceSpec? From(KubeEndpointSlice s)
    {
        if (s.AddressType is not ("IPv4" or "IPv6" or null) || s.Metadata?.Labels?.TryGetValue(ServiceNameLabel, out var service) != true || service is null)
        {
            return null;
        }

        return new EndpointSliceSpec(
            s.Metadata.Namespace ?? "default",
            service,
            (s.Endpoints ?? []).SelectMany(e => (e.Addresses ?? []).Select(a => new EndpointSpec(
                IPAddresses.Canonical(a),
                e.Conditions?.Ready ?? true, // nil means ready (discovery.k8s.io semantics)
                e.Conditions?.Serving ?? e.Conditions?.Ready ?? true,
                e.Conditions?.Terminating ?? false,
                e.NodeName))).ToList(),
            (s.Ports ?? []).Select(p => new ServicePortSpec(p.Name ?? string.Empty, p.Port ?? 0, (p.Protocol ?? "TCP").ToUpperInvariant(), 0)).ToList())
        {
            IsIPv6 = s.AddressType == "IPv6",
        };
    }
}
