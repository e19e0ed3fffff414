using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// ../shared/reference-data/kube-proxy-iptables: real dumps and the Services behind them. The services files are
/// turned into the JSON `kubectl get svc,endpointslices -A -o json` prints, so the audit reads them the way admins feed it.
/// </summary>
internal static class ReferenceData
{
    public static string Dir => Run.ReferenceData("kube-proxy-iptables", "the reference kube-proxy dumps");

    public static readonly string[] Dumps =
        ["overall-rules", "overall-rules-v128", "sync-repeated-initial", "real-kubeadm-v1.11-docker-2018", "real-k3s-counters-2022"];

    public static string Dump(string name) => File.ReadAllText(Path.Combine(Dir, name + ".txt"));

    public sealed record Row(string Service, string Type, string ClusterIP, string PortName, int Port, string Protocol, int NodePort,
        string[] ExternalIPs, string[] LoadBalancerIPs, string ExternalTrafficPolicy, string[] Endpoints, string SvcChain);

    public static List<Row> Rows(string name) => File.ReadAllLines(Path.Combine(Dir, name + ".services.txt"))
        .Where(l => l.Length > 0 && l[0] != '#')
        .Select(l => l.Split('\t'))
        .Select(c => new Row(c[0], c[1], c[2], c[3] == "-" ? string.Empty : c[3], int.Parse(c[4]), c[5],
            c[6] == "-" ? 0 : int.Parse(c[6]), List(c[7]), List(c[8]), c[10], List(c[13]), c[14]))
        .ToList();

    private static string[] List(string cell) => cell == "-" ? [] : cell.Split(',');

    /// <summary>A kubectl List with a Service per service and an EndpointSlice per service port.</summary>
    public static string KubectlJson(IEnumerable<Row> rows)
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
                ["ports"] = ports,
                ["externalTrafficPolicy"] = first.Type is "NodePort" or "LoadBalancer" ? first.ExternalTrafficPolicy : null,
            };
            if (first.ExternalIPs.Length > 0)
            {
                spec["externalIPs"] = new JsonArray(first.ExternalIPs.Select(ip => (JsonNode)ip).ToArray());
            }

            var status = new JsonObject();
            if (first.LoadBalancerIPs.Length > 0)
            {
                status["loadBalancer"] = new JsonObject { ["ingress"] = new JsonArray(first.LoadBalancerIPs.Select(ip => (JsonNode)new JsonObject { ["ip"] = ip }).ToArray()) };
            }

            items.Add(new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Service",
                ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
                ["spec"] = spec,
                ["status"] = status,
            });
            var i = 0;
            foreach (var r in group)
            {
                var endpoints = new JsonArray(r.Endpoints.Select(e => (JsonNode)new JsonObject
                {
                    ["addresses"] = new JsonArray(e[..e.LastIndexOf(':')]),
                    ["conditions"] = new JsonObject { ["ready"] = true, ["serving"] = true, ["terminating"] = false },
                }).ToArray());
                var port = new JsonObject { ["port"] = r.Endpoints.Length > 0 ? int.Parse(r.Endpoints[0][(r.Endpoints[0].LastIndexOf(':') + 1)..]) : r.Port, ["protocol"] = r.Protocol };
                if (r.PortName.Length > 0)
                {
                    port["name"] = r.PortName;
                }

                items.Add(new JsonObject
                {
                    ["apiVersion"] = "discovery.k8s.io/v1",
                    ["kind"] = "EndpointSlice",
                    ["addressType"] = "IPv4",
                    ["metadata"] = new JsonObject
                    {
                        ["name"] = $"{name}-{i++}",
                        ["namespace"] = ns,
                        ["labels"] = new JsonObject { ["kubernetes.io/service-name"] = name },
                    },
                    ["endpoints"] = endpoints,
                    ["ports"] = new JsonArray(port),
                });
            }
        }

        return new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = items }.ToJsonString();
    }
}
