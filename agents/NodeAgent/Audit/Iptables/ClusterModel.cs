using k8s.Models;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

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

public sealed record ServicePortSpec(string Name, int Port, string Protocol, int NodePort);

/// <summary>The parts of an EndpointSlice the audit needs.</summary>
public sealed record EndpointSliceSpec(string Namespace, string ServiceName, IReadOnlyList<EndpointSpec> Endpoints, IReadOnlyList<ServicePortSpec> Ports)
{
    public const string ServiceNameLabel = "kubernetes.io/service-name";

    public static EndpointSliceSpec? From(V1EndpointSlice s)
    {
        if (s.AddressType is not ("IPv4" or null) || s.Metadata?.Labels?.TryGetValue(ServiceNameLabel, out var service) != true || service is null)
        {
            return null;
        }

        return new EndpointSliceSpec(
            s.Metadata.NamespaceProperty ?? "default",
            service,
            (s.Endpoints ?? []).SelectMany(e => (e.Addresses ?? []).Select(a => new EndpointSpec(
                a,
                e.Conditions?.Ready ?? true, // nil means ready (discovery.k8s.io semantics)
                e.Conditions?.Serving ?? e.Conditions?.Ready ?? true,
                e.Conditions?.Terminating ?? false,
                e.NodeName))).ToList(),
            (s.Ports ?? []).Select(p => new ServicePortSpec(p.Name ?? string.Empty, p.Port ?? 0, (p.Protocol ?? "TCP").ToUpperInvariant(), 0)).ToList());
    }
}

public sealed record EndpointSpec(string Address, bool Ready, bool Serving, bool Terminating, string? NodeName);

/// <summary>Services and endpoint slices, as the API (or `kubectl get svc,endpointslices -A -o json`) has them.</summary>
public sealed record ClusterModel(IReadOnlyList<ServiceSpec> Services, IReadOnlyList<EndpointSliceSpec> Slices)
{
    public static readonly ClusterModel Empty = new([], []);

    /// <summary>Reads kubectl's JSON: a List of Services and EndpointSlices (or a ServiceList/EndpointSliceList), from any number of files.</summary>
    public static ClusterModel FromKubectlJson(IEnumerable<string> jsonDocuments)
    {
        var services = new List<ServiceSpec>();
        var slices = new List<EndpointSliceSpec>();
        foreach (var json in jsonDocuments)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            var root = doc.RootElement;
            IEnumerable<System.Text.Json.JsonElement> items = root.TryGetProperty("items", out var arr) && arr.ValueKind == System.Text.Json.JsonValueKind.Array
                ? arr.EnumerateArray()
                : [root];
            var listKind = root.TryGetProperty("kind", out var lk) ? lk.GetString() : null;
            foreach (var item in items)
            {
                var kind = item.TryGetProperty("kind", out var k) ? k.GetString()
                    : listKind?.EndsWith("List", StringComparison.Ordinal) == true ? listKind[..^4] : null;
                switch (kind)
                {
                    case "Service":
                        services.Add(ServiceSpec.From(k8s.KubernetesJson.Deserialize<V1Service>(item.GetRawText())));
                        break;
                    case "EndpointSlice":
                        if (EndpointSliceSpec.From(k8s.KubernetesJson.Deserialize<V1EndpointSlice>(item.GetRawText())) is { } s)
                        {
                            slices.Add(s);
                        }

                        break;
                    default:
                        break; // kubectl may include other kinds; they do not matter here
                }
            }
        }

        return new ClusterModel(services, slices);
    }
}
