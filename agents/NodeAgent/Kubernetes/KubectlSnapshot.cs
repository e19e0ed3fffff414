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
                throw new InvalidDataException($"{name}: not JSON: {ex.Message}", ex);
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
                    Services.Add(item.Deserialize(KubeJson.Default.KubeService) ?? throw new JsonException("null"));
                    break;
                case "EndpointSlice":
                    EndpointSlices.Add(item.Deserialize(KubeJson.Default.KubeEndpointSlice) ?? throw new JsonException("null"));
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

    /// <summary>What the NAT audits compare against.</summary>
    public ClusterModel Model() => new(
        Services.Select(ServiceSpec.From).ToList(),
        EndpointSlices.Select(EndpointSliceSpec.From).OfType<EndpointSliceSpec>().ToList());
}
