using System.Globalization;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Conntrack;

/// <summary>A UDP/SCTP flow to a Service whose reply does not come from one of that Service port's current endpoints.</summary>
public sealed record StaleFlow(string ServicePort, ConntrackEntry Flow, string Why);

/// <summary>
/// The stale conntrack entries (kubernetes #139628, #141371, #122740): flows whose original destination is a Service's
/// cluster IP, external IP, load balancer IP or (on a node address) node port, and whose reply source is not one of
/// that port's usable endpoints, or whose Service port has no endpoint at all. Such an entry keeps sending the flow to
/// a deleted endpoint until it times out. Only UDP and SCTP: TCP entries end with their connections. No I/O.
/// </summary>
public static class ConntrackAudit
{
    public const string Check = "kube-proxy.conntrack";

    internal static readonly FindingFactory Findings = new(Check);

    public static List<StaleFlow> Run(ClusterModel cluster, IEnumerable<ConntrackEntry> entries, IReadOnlyCollection<string> nodeAddresses)
    {
        var judge = Judge(cluster, nodeAddresses);
        return entries.Select(judge).OfType<StaleFlow>().ToList();
    }

    /// <summary>
    /// The Services' destinations, indexed once; the function tells of one flow whether it is stale (null when not),
    /// so a listing can be judged line by line as it is read, keeping only the stale flows.
    /// </summary>
    public static Func<ConntrackEntry, StaleFlow?> Judge(ClusterModel cluster, IReadOnlyCollection<string> nodeAddresses)
    {
        var (byDestination, byNodePort) = Destinations(cluster);
        var nodes = nodeAddresses.Select(NftRuleset.CanonicalIP).ToHashSet(StringComparer.Ordinal);
        return e =>
        {
            if (e.Protocol is not ("udp" or "sctp"))
            {
                return null;
            }

            var dst = NftRuleset.CanonicalIP(e.OrigDestination);
            if (!byDestination.TryGetValue($"{dst} {e.OrigDestinationPort.ToString(CultureInfo.InvariantCulture)} {e.Protocol}", out var target)
                && !(nodes.Contains(dst) && byNodePort.TryGetValue($"{e.OrigDestinationPort.ToString(CultureInfo.InvariantCulture)} {e.Protocol} {(dst.Contains(':', StringComparison.Ordinal) ? 6 : 4).ToString(CultureInfo.InvariantCulture)}", out target)))
            {
                return null;
            }

            var reply = $"{NftRuleset.CanonicalIP(e.ReplySource)} {e.ReplySourcePort.ToString(CultureInfo.InvariantCulture)}";
            return target.Endpoints.Count == 0
                ? new StaleFlow(target.Spn, e, $"{target.Spn} has no endpoint")
                : !target.Endpoints.Contains(reply)
                    ? new StaleFlow(target.Spn, e,
                        $"its reply comes from {reply.Replace(' ', ':')}, not from an endpoint of {target.Spn} ({string.Join(", ", target.Endpoints.Order(StringComparer.Ordinal).Take(5).Select(x => x.Replace(' ', ':')))})")
                    : null;
        };
    }

    /// <summary>
    /// Each UDP/SCTP Service port's destinations, in both families: "ip port proto" (cluster, external and load
    /// balancer IPs) and "nodeport proto family" (node ports), each to the Service port and the reply sources its
    /// usable endpoints would give.
    /// </summary>
    private static (Dictionary<string, (string Spn, HashSet<string> Endpoints)> ByDestination, Dictionary<string, (string Spn, HashSet<string> Endpoints)> ByNodePort)
        Destinations(ClusterModel cluster)
    {
        // destination "ip port proto" → (service port, the reply sources its endpoints would give)
        var byDestination = new Dictionary<string, (string Spn, HashSet<string> Endpoints)>(StringComparer.Ordinal);
        var byNodePort = new Dictionary<string, (string Spn, HashSet<string> Endpoints)>(StringComparer.Ordinal);
        var slices = new SlicesByService(cluster.Slices);
        foreach (var svc in cluster.Services)
        {
            foreach (var port in svc.Ports.Where(p => p.Protocol is "UDP" or "SCTP"))
            {
                var spn = ServicePortName.Of(svc, port);
                var proto = port.Protocol.ToLowerInvariant();
                foreach (var ipv6 in new[] { false, true })
                {
                    var family = svc.Family(ipv6);
                    var endpoints = UsableEndpoints.Of(slices.Of(svc), port, ipv6)
                        .Select(u => $"{NftRuleset.CanonicalIP(u.Address)} {u.Port.ToString(CultureInfo.InvariantCulture)}").ToHashSet(StringComparer.Ordinal);
                    foreach (var ip in new[] { family.ClusterIP }.Concat(family.ExternalIPs).Concat(family.LoadBalancerIPs).OfType<string>().Where(ip => ip is not ("" or "None")))
                    {
                        byDestination[$"{NftRuleset.CanonicalIP(ip)} {port.Port.ToString(CultureInfo.InvariantCulture)} {proto}"] = (spn, endpoints);
                    }

                    if (port.NodePort > 0)
                    {
                        var key = $"{port.NodePort.ToString(CultureInfo.InvariantCulture)} {proto} {(ipv6 ? 6 : 4).ToString(CultureInfo.InvariantCulture)}";
                        if (byNodePort.TryGetValue(key, out var existing))
                        {
                            existing.Endpoints.UnionWith(endpoints);
                        }
                        else
                        {
                            byNodePort[key] = (spn, endpoints);
                        }
                    }
                }
            }
        }

        return (byDestination, byNodePort);
    }
}
