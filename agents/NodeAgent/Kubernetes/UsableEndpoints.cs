using System.Globalization;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>An endpoint kube-proxy sends a service port's traffic to: "address:port" and the node it is on.</summary>
public sealed record UsableEndpoint(string Address, int Port, string? Node)
{
    public string Target => $"{Address}:{Port.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>kube-proxy's usable endpoints of a service port: the ready ones, or (since 1.26) the serving-and-terminating ones when none is ready.</summary>
public static class UsableEndpoints
{
    public static List<UsableEndpoint> Of(IEnumerable<EndpointSliceSpec> slices, ServicePortSpec port, bool ipv6 = false) => Of(slices, port, ipv6, node: null);

    /// <summary>
    /// The endpoints a Traffic Policy Local sends to on <paramref name="node"/>, chosen as kube-proxy's
    /// CategorizeEndpoints does — apart from the cluster-wide choice: this node's ready ones, or, when none of them is
    /// ready, this node's serving-and-terminating ones (a pod of this node still terminating while its replacements are
    /// ready elsewhere is local traffic's endpoint; it is not in the cluster-wide set then).
    /// </summary>
    public static List<UsableEndpoint> Local(IEnumerable<EndpointSliceSpec> slices, ServicePortSpec port, string node, bool ipv6 = false) => Of(slices, port, ipv6, node);

    private static List<UsableEndpoint> Of(IEnumerable<EndpointSliceSpec> slices, ServicePortSpec port, bool ipv6, string? node)
    {
        var ready = new List<UsableEndpoint>();
        var terminating = new List<UsableEndpoint>();
        foreach (var slice in slices)
        {
            if (slice.IsIPv6 != ipv6)
            {
                continue;
            }

            var slicePort = slice.Ports.FirstOrDefault(p => p.Name == port.Name && p.Protocol == port.Protocol);
            if (slicePort is null)
            {
                continue;
            }

            foreach (var e in slice.Endpoints)
            {
                if (node is not null && e.NodeName != node)
                {
                    continue;
                }

                var u = new UsableEndpoint(e.Address, slicePort.Port, e.NodeName);
                if (e.Ready)
                {
                    ready.Add(u);
                }
                else if (e.Serving && e.Terminating)
                {
                    terminating.Add(u);
                }
            }
        }

        return ready.Count > 0 ? ready : terminating;
    }
}
