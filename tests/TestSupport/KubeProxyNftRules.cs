using System.Globalization;
using System.Text;
using Toolforge.Agents.NodeAgent.Audit.Nftables;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Writes the `nft -f` input kube-proxy's nftables proxier would write for ClusterIP services (the layout of its
/// proxier_test.go: one table "ip kube-proxy", the service-ips / no-endpoint-services maps, per-port service- and
/// endpoint- chains). Pod CIDR 10.0.0.0/8; the cluster IP range given.
/// </summary>
public static class KubeProxyNftRules
{
    private const string Header = """
        add table ip kube-proxy { comment "rules for kube-proxy" ; }
        add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
        add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
        add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
        add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
        add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
        add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
        add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
        add chain ip kube-proxy cluster-ips-check
        add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
        add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
        add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
        add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
        add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
        add chain ip kube-proxy firewall-check
        add chain ip kube-proxy mark-for-masquerade
        add chain ip kube-proxy masquerading
        add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
        add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
        add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
        add chain ip kube-proxy nodeport-endpoints-check
        add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
        add chain ip kube-proxy services
        add chain ip kube-proxy service-endpoints-check
        add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
        add rule ip kube-proxy cluster-ips-check ip daddr { CIDR } drop comment "Drop traffic to unallocated ClusterIPs"
        add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
        add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
        add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
        add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
        add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
        add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
        add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
        add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
        add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
        add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
        add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
        add rule ip kube-proxy masquerading mark set mark xor 0x4000
        add rule ip kube-proxy masquerading masquerade fully-random
        add rule ip kube-proxy nat-output jump services
        add rule ip kube-proxy nat-postrouting jump masquerading
        add rule ip kube-proxy nat-prerouting jump services
        add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
        add rule ip kube-proxy reject-chain reject
        add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
        add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
        add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services

        """;

    public static string Generate(IEnumerable<KubeProxyRules.Svc> services, string serviceCidr = "10.96.0.0/12")
    {
        var chains = new StringBuilder();
        var rules = new StringBuilder();
        var clusterIps = new List<string>();
        var serviceIps = new List<string>();
        var noEndpoints = new List<string>();
        foreach (var s in services)
        {
            var proto = s.Protocol.ToLowerInvariant();
            clusterIps.Add(s.ClusterIP);
            var key = $"{s.ClusterIP} . {proto} . {s.Port.ToString(CultureInfo.InvariantCulture)}";
            if (s.Endpoints.Length == 0)
            {
                noEndpoints.Add($"{key} : goto reject-chain");
                continue;
            }

            var svc = NftNames.ServicePrefixes[0] + NftNames.ServicePortBase(s.Namespace, s.Name, proto, s.PortName);
            serviceIps.Add($"{key} : goto {svc}");
            chains.Append(CultureInfo.InvariantCulture, $"add chain ip kube-proxy {svc}\n");
            rules.Append(CultureInfo.InvariantCulture, $"add rule ip kube-proxy {svc} ip daddr {s.ClusterIP} ip saddr != 10.0.0.0/8 jump mark-for-masquerade\n");
            var vmap = new List<string>();
            for (var i = 0; i < s.Endpoints.Length; i++)
            {
                var colon = s.Endpoints[i].LastIndexOf(':');
                var (ip, port) = (s.Endpoints[i][..colon], int.Parse(s.Endpoints[i][(colon + 1)..], CultureInfo.InvariantCulture));
                var sep = NftNames.EndpointPrefix + NftNames.EndpointBase(s.Namespace, s.Name, proto, s.PortName, ip, port);
                chains.Append(CultureInfo.InvariantCulture, $"add chain ip kube-proxy {sep}\n");
                rules.Append(CultureInfo.InvariantCulture, $"add rule ip kube-proxy {sep} ip saddr {ip} jump mark-for-masquerade\n");
                rules.Append(CultureInfo.InvariantCulture, $"add rule ip kube-proxy {sep} meta l4proto {proto} dnat to {s.Endpoints[i]}\n");
                vmap.Add($"{i.ToString(CultureInfo.InvariantCulture)} : goto {sep}");
            }

            rules.Append(CultureInfo.InvariantCulture, $"add rule ip kube-proxy {svc} numgen random mod {s.Endpoints.Length.ToString(CultureInfo.InvariantCulture)} vmap {{ {string.Join(" , ", vmap)} }}\n");
        }

        var text = new StringBuilder(Header.Replace("CIDR", serviceCidr, StringComparison.Ordinal));
        text.Append(chains);
        Elements(text, "cluster-ips", clusterIps.Distinct(StringComparer.Ordinal).ToList());
        Elements(text, "service-ips", serviceIps);
        Elements(text, "no-endpoint-services", noEndpoints);
        text.Append(rules);
        return text.ToString();
    }

    // Elements in batches: one command per element would make nft -f of 10,000 Services needlessly slow.
    private static void Elements(StringBuilder text, string map, List<string> elements)
    {
        foreach (var chunk in elements.Chunk(500))
        {
            text.Append(CultureInfo.InvariantCulture, $"add element ip kube-proxy {map} {{ {string.Join(", ", chunk)} }}\n");
        }
    }
}
