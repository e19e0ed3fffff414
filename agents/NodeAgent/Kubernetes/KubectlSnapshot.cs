using System.Globalization;
using System.Text.Json;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// What `kubectl get svc,endpointslices,namespaces -A -o json` (and `kubectl get node NAME -o json`) print, read
/// into the parts of the API's objects the agent reads (<see cref="KubeJson"/>): a List (or ServiceList, ...) of items, or one object. Anything that is not such a
/// document is an error that names what is wrong and where, never an empty cluster.
/// </summary>
public sealed class KubectlSnapshot
{
    public List<KubeService> Services { get; } = [];

    public List<KubeEndpointSlice> EndpointSlices { get; } = [];

    public List<KubeNamespace> Namespaces { get; } = [];

    public List<KubeNode> Nodes { get; } = [];

    /// <summary>Kinds the documents held that do not matter here (Pods, ConfigMaps...), with how many of each.</summary>
    public Dictionary<string, int> Ignored { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The node-agent's Services file (`Kubernetes:File`), read with the bound of <see cref="Common.Files.BoundedFile"/>:
    /// a file that holds other objects but no Service (a Pod list: the wrong `kubectl get`) would be audited as a cluster
    /// with no Service — clean — so it is refused, naming what it holds. At start that is exit 78; a file replaced so
    /// under the running daemon is the cluster view's problem (it keeps what it read last and says why). An empty list
    /// is a cluster with no Service (a host that is no node).
    /// </summary>
    public static KubectlSnapshot ReadServicesFile(string key, string path)
    {
        var snapshot = Read([(path, Common.Files.BoundedFile.ReadText(key, path))]);
        return snapshot.Services.Count > 0 || snapshot.Ignored.Count == 0 ? snapshot
            : throw new InvalidDataException($"{key}: {path} holds no Service{(snapshot.Ignored.Count > 0 ? $" (it holds {string.Join(", ", snapshot.Ignored.Select(i => $"{i.Value} {i.Key}"))})" : string.Empty)}: write it with kubectl get svc,endpointslices,namespaces -A -o json");
    }

    /// <summary>Reads <paramref name="documents"/> (name, JSON text); throws <see cref="InvalidDataException"/> naming the problem.</summary>
    public static KubectlSnapshot Read(IEnumerable<(string Name, string Json)> documents)
    {
        var snapshot = new KubectlSnapshot();
        foreach (var (name, json) in documents)
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(json);
            }
            catch (JsonException ex)
            {
                // Not ex.Message: it quotes the token the parser stopped at, which for YAML or text is much of the file.
                throw new InvalidDataException(
                    $"{name}: not JSON (a syntax error at line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}): give what `kubectl get svc,endpointslices -A -o json` prints", ex);
            }

            using (doc)
            {
                snapshot.Add(name, doc.RootElement);
            }
        }

        return snapshot;
    }

    private void Add(string name, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{name}: not a Kubernetes object or list (the document is a JSON {root.ValueKind.ToString().ToLowerInvariant()})");
        }

        var listKind = root.TryGetProperty("kind", out var lk) && lk.ValueKind == JsonValueKind.String ? lk.GetString() : null;
        if (!root.TryGetProperty("items", out var items))
        {
            AddItem(name, root, null);
            return;
        }

        if (items.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"{name}: \"items\" is a JSON {items.ValueKind.ToString().ToLowerInvariant()}, not a list of objects");
        }

        var i = 0;
        foreach (var item in items.EnumerateArray())
        {
            AddItem($"{name}: items[{i++}]", item, listKind?.EndsWith("List", StringComparison.Ordinal) == true && listKind != "List" ? listKind[..^4] : null);
        }
    }

    private void AddItem(string where, JsonElement item, string? kindFromList)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{where}: a JSON {item.ValueKind.ToString().ToLowerInvariant()}, not a Kubernetes object");
        }

        var kind = item.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : kindFromList;
        if (kind is null)
        {
            throw new InvalidDataException($"{where}: no \"kind\" (expected Service, EndpointSlice, Namespace or Node)");
        }

        string? objectName = null;
        if (item.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object
            && meta.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String)
        {
            objectName = n.GetString();
        }

        var wanted = kind is "Service" or "EndpointSlice" or "Namespace" or "Node";
        if (wanted && string.IsNullOrEmpty(objectName))
        {
            throw new InvalidDataException($"{where}: a {kind} without metadata.name");
        }

        try
        {
            switch (kind)
            {
                case "Service":
                    var service = item.Deserialize(KubeJson.Default.KubeService) ?? throw new JsonException("null");
                    Services.Add(Problem(service) is { } sp ? throw new InvalidDataException($"{where}: Service {service.Metadata?.Namespace}/{objectName}: {sp}") : service);
                    break;
                case "EndpointSlice":
                    var slice = item.Deserialize(KubeJson.Default.KubeEndpointSlice) ?? throw new JsonException("null");
                    EndpointSlices.Add(Problem(slice) is { } ep ? throw new InvalidDataException($"{where}: EndpointSlice {slice.Metadata?.Namespace}/{objectName}: {ep}") : slice);
                    break;
                case "Namespace":
                    Namespaces.Add(item.Deserialize(KubeJson.Default.KubeNamespace) ?? throw new JsonException("null"));
                    break;
                case "Node":
                    Nodes.Add(item.Deserialize(KubeJson.Default.KubeNode) ?? throw new JsonException("null"));
                    break;
                default:
                    Ignored[kind] = Ignored.GetValueOrDefault(kind) + 1;
                    break;
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{where}: {kind} {objectName}: {ex.Message}", ex);
        }
    }

    // What kube-proxy could not read in a Service: an address that is none (999.1.2.3), a port outside 1-65535.
    private static string? Problem(KubeService s)
    {
        var spec = s.Spec;
        if (spec is null)
        {
            return null;
        }

        var addresses = (spec.ClusterIPs ?? []).Select(a => ("spec.clusterIPs", a))
            .Concat(spec.ClusterIP is { } c && c is not ("" or "None") ? [("spec.clusterIP", c)] : [])
            .Concat((spec.ExternalIPs ?? []).Select(a => ("spec.externalIPs", a)))
            .Concat((s.Status?.LoadBalancer?.Ingress ?? []).Where(i => !string.IsNullOrEmpty(i.Ip)).Select(i => ("status.loadBalancer.ingress", i.Ip!)));
        foreach (var (field, address) in addresses)
        {
            if (!(field == "spec.clusterIPs" && address == "None") && !IPAddresses.IsValid(address))
            {
                return $"{field} \"{address}\" is not an IP address";
            }
        }

        var ports = spec.Ports ?? [];
        for (var i = 0; i < ports.Count; i++)
        {
            var p = ports[i];
            var which = $"spec.ports[{i.ToString(CultureInfo.InvariantCulture)}]{(string.IsNullOrEmpty(p.Name) ? string.Empty : $" ({p.Name})")}";
            if (p.Port is not (>= 1 and <= 65535))
            {
                return $"{which}: port {p.Port?.ToString(CultureInfo.InvariantCulture) ?? "(none)"} is not 1-65535";
            }

            if (p.NodePort is < 0 or > 65535)
            {
                return $"{which}: nodePort {p.NodePort?.ToString(CultureInfo.InvariantCulture)} is not 0-65535";
            }
        }

        return null;
    }

    private static string? Problem(KubeEndpointSlice s)
    {
        if (s.AddressType is "IPv4" or "IPv6" or null)
        {
            foreach (var a in (s.Endpoints ?? []).SelectMany(e => e.Addresses ?? []))
            {
                if (!IPAddresses.IsValid(a))
                {
                    return $"endpoint address \"{a}\" is not an IP address";
                }
            }
        }

        var ports = s.Ports ?? [];
        for (var i = 0; i < ports.Count; i++)
        {
            if (ports[i].Port is < 0 or > 65535)
            {
                return $"ports[{i.ToString(CultureInfo.InvariantCulture)}]{(string.IsNullOrEmpty(ports[i].Name) ? string.Empty : $" ({ports[i].Name})")}: port {ports[i].Port?.ToString(CultureInfo.InvariantCulture)} is not 0-65535";
            }
        }

        return null;
    }

    /// <summary>What the NAT audits compare against.</summary>
    public ClusterModel Model() => new(
        Services.Select(ServiceSpec.From).ToList(),
        EndpointSlices.Select(EndpointSliceSpec.From).OfType<EndpointSliceSpec>().ToList());
}
