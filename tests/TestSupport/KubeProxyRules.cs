using System.Globalization;
using System.Text;
using Toolforge.Agents.NodeAgent.Audit.Iptables;

namespace Toolforge.Agents.TestSupport;

/// <summary>Writes the iptables-restore input kube-proxy (1.28 layout) would write for ClusterIP services.</summary>
public static class KubeProxyRules
{
    public sealed record Svc(string Namespace, string Name, string ClusterIP, string PortName, int Port, string Protocol, string[] Endpoints);

    public static string Generate(IEnumerable<Svc> services)
    {
        var natChains = new StringBuilder(":KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-NODEPORTS - [0:0]\n");
        var natRules = new StringBuilder();
        var svcRules = new StringBuilder();
        var filter = new StringBuilder();
        foreach (var s in services)
        {
            var proto = s.Protocol.ToLowerInvariant();
            var spn = KubeProxyNames.ServicePortName(s.Namespace, s.Name, s.PortName);
            if (s.Endpoints.Length == 0)
            {
                filter.Append(CultureInfo.InvariantCulture, $"-A KUBE-SERVICES -d {s.ClusterIP}/32 -p {proto} -m comment --comment \"{spn} has no endpoints\" -m {proto} --dport {s.Port} -j REJECT --reject-with icmp-port-unreachable\n");
                continue;
            }

            var svc = KubeProxyNames.ServiceChain(spn, proto);
            natChains.Append(CultureInfo.InvariantCulture, $":{svc} - [0:0]\n");
            natRules.Append(CultureInfo.InvariantCulture, $"-A KUBE-SERVICES -d {s.ClusterIP}/32 -p {proto} -m comment --comment \"{spn} cluster IP\" -m {proto} --dport {s.Port} -j {svc}\n");
            svcRules.Append(CultureInfo.InvariantCulture, $"-A {svc} ! -s 10.0.0.0/8 -d {s.ClusterIP}/32 -p {proto} -m comment --comment \"{spn} cluster IP\" -m {proto} --dport {s.Port} -j KUBE-MARK-MASQ\n");
            for (var i = 0; i < s.Endpoints.Length; i++)
            {
                var sep = KubeProxyNames.EndpointChain(spn, proto, s.Endpoints[i]);
                natChains.Append(CultureInfo.InvariantCulture, $":{sep} - [0:0]\n");
                var left = s.Endpoints.Length - i;
                var statistic = left > 1 ? $"-m statistic --mode random --probability {1.0 / left:0.0000000000} " : string.Empty;
                svcRules.Append(CultureInfo.InvariantCulture, $"-A {svc} -m comment --comment \"{spn} -> {s.Endpoints[i]}\" {statistic}-j {sep}\n");
                var ip = s.Endpoints[i][..s.Endpoints[i].LastIndexOf(':')];
                svcRules.Append(CultureInfo.InvariantCulture, $"-A {sep} -s {ip}/32 -m comment --comment \"{spn}\" -j KUBE-MARK-MASQ\n");
                svcRules.Append(CultureInfo.InvariantCulture, $"-A {sep} -p {proto} -m comment --comment \"{spn}\" -m {proto} -j DNAT --to-destination {s.Endpoints[i]}\n");
            }
        }

        natRules.Append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
        natRules.Append("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n");
        return "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n" + filter + "COMMIT\n*nat\n" + natChains + natRules + svcRules + "COMMIT\n";
    }

    /// <summary>n services: every 10th without endpoints, the rest with 1-3 endpoints.</summary>
    public static List<Svc> Many(int n) => Enumerable.Range(0, n).Select(i => new Svc(
        $"tool-{i / 50}", $"svc-{i}", $"10.{96 + (i / 65536)}.{i / 256 % 256}.{i % 256}", i % 3 == 0 ? string.Empty : "http", 8000 + (i % 100), i % 7 == 0 ? "UDP" : "TCP",
        i % 10 == 0 ? [] : Enumerable.Range(0, 1 + (i % 3)).Select(e => $"192.168.{(i * 3 + e) / 256 % 256}.{(i * 3 + e) % 256}:{8000 + (i % 100)}").ToArray())).ToList();
}
