using System.Text.Json.Nodes;

namespace Toolforge.Agents.TestSupport;

/// <summary>One Service port of a reference fixture (a services.txt row of kube-proxy's iptables or nftables tests).</summary>
public sealed record ServiceRow(string Service, string Type, string ClusterIP, string PortName, int Port, string Protocol, int NodePort, string[] ExternalIPs,
    string[] LoadBalancerIPs, string[] SourceRanges, string ExternalTrafficPolicy, string Affinity, string[] Endpoints, string[] EndpointNodes, string Family);

/// <summary>
/// What `kubectl get svc,endpointslices -A -o json` prints for reference rows: a List with a Service per service and
/// an EndpointSlice per service port (the iptables and nftables reference data both).
/// </summary>
public static class KubectlList
{
    public static string Json(IEnumerable<ServiceRow> rows)
    {
        var items = new JsonArray();
        foreach (var group in rows.GroupBy(r => r.Service))
        {
            var first = group.First();
            var (ns, name) = (first.Service.Split('/')[0], first.Service.Split('/')[1]);
            var ports = new JsonArray();
            foreach (var r in group)
            {
                var p = new JsonObject { ["port"] = r.Port, ["protocol"] = r.Protocol, ["targetPort"] = r.Port };
                if (r.PortName.Length > 0)
                {
                    p["name"] = r.PortName;
                }

                if (r.NodePort > 0)
                {
                    p["nodePort"] = r.NodePort;
                }

                ports.Add(p);
            }

            var spec = new JsonObject
            {
                ["type"] = first.Type,
                ["clusterIP"] = first.ClusterIP,
                ["clusterIPs"] = new JsonArray(first.ClusterIP),
                ["ipFamilies"] = new JsonArray(first.Family),
                ["ports"] = ports,
            };
            if (first.Type is "NodePort" or "LoadBalancer")
            {
                spec["externalTrafficPolicy"] = first.ExternalTrafficPolicy;
            }

            if (first.Affinity.StartsWith("ClientIP", StringComparison.Ordinal))
            {
                spec["sessionAffinity"] = "ClientIP";
            }

            if (first.ExternalIPs.Length > 0)
            {
                spec["externalIPs"] = new JsonArray(first.ExternalIPs.Select(ip => (JsonNode)ip).ToArray());
            }

            if (first.SourceRanges.Length > 0)
            {
                spec["loadBalancerSourceRanges"] = new JsonArray(first.SourceRanges.Select(r => (JsonNode)r).ToArray());
            }

            var status = new JsonObject();
            if (first.LoadBalancerIPs.Length > 0)
            {
                status["loadBalancer"] = new JsonObject { ["ingress"] = new JsonArray(first.LoadBalancerIPs.Select(ip => (JsonNode)new JsonObject { ["ip"] = ip }).ToArray()) };
            }

            items.Add(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Service", ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns }, ["spec"] = spec, ["status"] = status });
            var i = 0;
            foreach (var r in group)
            {
                var endpoints = new JsonArray();
                for (var e = 0; e < r.Endpoints.Length; e++)
                {
                    var ep = new JsonObject
                    {
                        ["addresses"] = new JsonArray(r.Endpoints[e][..r.Endpoints[e].LastIndexOf(':')].Trim('[', ']')),
                        ["conditions"] = new JsonObject { ["ready"] = true, ["serving"] = true, ["terminating"] = false },
                    };
                    if (e < r.EndpointNodes.Length && r.EndpointNodes[e] != "-")
                    {
                        ep["nodeName"] = r.EndpointNodes[e];
                    }

                    endpoints.Add(ep);
                }

                var port = new JsonObject
                {
                    ["port"] = r.Endpoints.Length > 0 ? int.Parse(r.Endpoints[0][(r.Endpoints[0].LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture) : r.Port,
                    ["protocol"] = r.Protocol,
                };
                if (r.PortName.Length > 0)
                {
                    port["name"] = r.PortName;
                }

                items.Add(new JsonObject
                {
                    ["apiVersion"] = "discovery.k8s.io/v1",
                    ["kind"] = "EndpointSlice",
                    ["addressType"] = r.Family,
                    ["metadata"] = new JsonObject { ["name"] = $"{name}-{i++}", ["namespace"] = ns, ["labels"] = new JsonObject { ["kubernetes.io/service-name"] = name } },
                    ["endpoints"] = endpoints,
                    ["ports"] = new JsonArray(port),
                });
            }
        }

        return new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = items }.ToJsonString();
    }
}
