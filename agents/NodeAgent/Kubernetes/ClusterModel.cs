namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>Services and endpoint slices, as the API (or `kubectl get svc,endpointslices -A -o json`) has them.</summary>
public sealed record ClusterModel(IReadOnlyList<ServiceSpec> Services, IReadOnlyList<EndpointSliceSpec> Slices)
{
    public static readonly ClusterModel Empty = new([], []);

    /// <summary>Reads kubectl's JSON (see <see cref="KubectlSnapshot"/>); throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static ClusterModel FromKubectlJson(IEnumerable<string> jsonDocuments) =>
        KubectlSnapshot.Read(jsonDocuments.Select((json, i) => ($"document {i + 1}", json))).Model();
}
