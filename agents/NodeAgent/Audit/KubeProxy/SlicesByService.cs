using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// The EndpointSlices of each Service (a slice names its Service in its kubernetes.io/service-name label), grouped
/// once per audit, in the order the cluster view lists them.
/// </summary>
internal sealed class SlicesByService
{
    private readonly Dictionary<(string Namespace, string Name), List<EndpointSliceSpec>> _slices = [];

    public SlicesByService(IEnumerable<EndpointSliceSpec> slices)
    {
        foreach (var slice in slices)
        {
            if (!_slices.TryGetValue((slice.Namespace, slice.ServiceName), out var list))
            {
                _slices[(slice.Namespace, slice.ServiceName)] = list = new List<EndpointSliceSpec>(1);
            }

            list.Add(slice);
        }
    }

    /// <summary>How many Services have a slice.</summary>
    public int Count => _slices.Count;

    /// <summary>The Service's slices; none when it has none (a Service without a selector, or before the controller wrote one).</summary>
    public IReadOnlyList<EndpointSliceSpec> Of(ServiceSpec service) => Of(service.Namespace, service.Name);

    public IReadOnlyList<EndpointSliceSpec> Of(string ns, string name) =>
        _slices.TryGetValue((ns, name), out var list) ? list : [];
}
