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
    public static string KubectlJson(IEnumerable<Row> rows) => KubectlList.Json(rows.Select(r => new ServiceRow(r.Service, r.Type, r.ClusterIP, r.PortName, r.Port,
        r.Protocol, r.NodePort, r.ExternalIPs, r.LoadBalancerIPs, SourceRanges: [], r.ExternalTrafficPolicy, Affinity: "-", r.Endpoints, EndpointNodes: [], Family: "IPv4")));
}
