using System.Globalization;
using System.Runtime.CompilerServices;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

public sealed record NftAuditOptions(bool ForbidNodePorts = false, string? NodeName = null);

/// <summary>
/// Compares kube-proxy's nftables table (ip and ip6 kube-proxy) with what its nftables proxier writes for the
/// Services and EndpointSlices, as sets: the service-ips / service-nodeports / firewall-ips elements (destination →
/// goto the Service port's chain), no-endpoint-services / no-endpoint-nodeports (→ reject-chain or drop), cluster-ips,
/// each service-/local- chain's numgen over exactly the usable endpoints, each endpoint- chain's DNAT. Findings as in
/// iptables mode (missing-rule, wrong-target, wrong-backend, missing-reject, stale-rule, nodeport-forbidden) plus
/// stale-chain: a per-service chain or affinity set no Service explains. Keyed on map contents and chain names, never
/// on rule text, element order, handles or priorities. No I/O.
/// </summary>
public static class NftAudit
{
    public const string Check = "kube-proxy.nftables";

    internal static readonly FindingFactory Findings = new(Check);

    private const string ServiceIps = "service-ips";
    private const string ServiceNodeports = "service-nodeports";
    private const string FirewallIps = "firewall-ips";
    private const string NoEndpointServices = "no-endpoint-services";
    private const string NoEndpointNodeports = "no-endpoint-nodeports";
    private const string ClusterIps = "cluster-ips";
    private const string Reject = "goto reject-chain";

    private sealed record Want(string Map, string Key, string Verdict, string Spn, string What);

    /// <summary>The verdict maps every layout of kube-proxy's nftables proxier creates on every sync.</summary>
    private static readonly string[] LayoutMaps = [ServiceIps, ServiceNodeports, NoEndpointServices, NoEndpointNodeports, FirewallIps];

    /// <summary>The chains every layout has that the Services' traffic passes (hooks, the dispatch, the reject helper).</summary>
    private static readonly string[] LayoutChains = ["nat-prerouting", "nat-output", "services", "reject-chain"];

    /// <summary>What each chain must hold for the Services' traffic to reach the maps: a jump, or a vmap lookup ("@map").</summary>
    private static readonly (string Chain, string Target, string Why)[] LayoutLinks =
    [
        ("nat-prerouting", "services", "traffic from pods and outside never reaches the Service maps"),
        ("nat-output", "services", "traffic from the node itself never reaches the Service maps"),
        ("services", "@" + ServiceIps, "no cluster, external or load balancer IP is sent to its Service"),
        ("services", "@" + ServiceNodeports, "no node port is sent to its Service"),
    ];

    public static List<Finding> Run(ClusterModel cluster, NftRuleset rules, NftAuditOptions options)
    {
        var findings = new List<Finding>();
        if (rules.Families.Count == 0)
        {
            findings.Add(Findings.Make("unknown-layout", Severity.Error, "kube-proxy", "nft listed no kube-proxy table: nothing here is kube-proxy's nftables layout", ("table", "kube-proxy")));
        }

        var slicesByService = new SlicesByService(cluster.Slices);
        foreach (var family in rules.Families.Order(StringComparer.Ordinal))
        {
            AuditFamily(family, cluster, slicesByService, rules, options, findings);
        }

        return findings;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AuditFamily(string family, ClusterModel cluster, SlicesByService slicesByService, NftRuleset rules,
        NftAuditOptions options, List<Finding> findings)
    {
        var ipv6 = family == "ip6";
        var wants = new List<Want>();
        var clusterIps = new HashSet<string>(StringComparer.Ordinal);
        var known = new HashSet<string>(StringComparer.Ordinal); // every per-service chain/set base name (without its prefix) a Service explains
        var backends = new List<(string Spn, string Chain, HashSet<string> EndpointChains)>();
        var dnats = new Dictionary<string, (string Spn, string Target)>(StringComparer.Ordinal);

        foreach (var svc in cluster.Services)
        {
            var addresses = svc.Family(ipv6);
            if (svc.Type == "ExternalName" || addresses.ClusterIP is null or "" or "None")
            {
                continue;
            }

            var cip = NftRuleset.CanonicalIP(addresses.ClusterIP);
            var slices = slicesByService.Of(svc);
            foreach (var port in svc.Ports)
            {
                var proto = port.Protocol.ToLowerInvariant();
                var spn = ServicePortName.Of(svc, port);
                var name = NftNames.ServicePortBase(svc.Namespace, svc.Name, proto, port.Name);
                known.Add(name);

                // Every endpoint's chain name (a SHA-256 each), computed once: address:port → endpoint- chain.
                var endpointChains = new Dictionary<(string, int), string>();
                foreach (var slice in slices.Where(s => s.IsIPv6 == ipv6))
                {
                    foreach (var sp in slice.Ports.Where(p => p.Name == port.Name && p.Protocol == port.Protocol))
                    {
                        foreach (var e in slice.Endpoints)
                        {
                            var address = NftRuleset.CanonicalIP(e.Address);
                            if (!endpointChains.ContainsKey((address, sp.Port)))
                            {
                                var eb = NftNames.EndpointBase(svc.Namespace, svc.Name, proto, port.Name, address, sp.Port);
                                endpointChains[(address, sp.Port)] = NftNames.EndpointPrefix + eb;
                                known.Add(eb);
                            }
                        }
                    }
                }

                if (options.ForbidNodePorts && port.NodePort > 0 && !ipv6)
                {
                    findings.Add(Findings.NodePortForbidden(spn, port.NodePort));
                }

                var usable = UsableEndpoints.Of(slices, port, ipv6)
                    .ConvertAll(u => NftRuleset.CanonicalIP(u.Address) is var a && ReferenceEquals(a, u.Address) ? u : u with { Address = a });
                var local = usable.Where(u => options.NodeName is not null && u.Node == options.NodeName).ToList();
                var internalUsable = svc.InternalTrafficLocal ? local : usable;
                var p = port.Port.ToString(CultureInfo.InvariantCulture);
                clusterIps.Add(cip);

                // The cluster IP.
                wants.Add(internalUsable.Count > 0
                    ? new Want(ServiceIps, $"{cip} . {proto} . {p}", $"goto {(svc.InternalTrafficLocal ? "local-" : "service-")}{name}", spn, "cluster IP")
                    : new Want(NoEndpointServices, $"{cip} . {proto} . {p}", usable.Count == 0 ? Reject : "drop", spn, "cluster IP"));

                // External IPs, load balancer IPs and the node port: through external-.
                var externals = addresses.ExternalIPs.Select(ip => (Ip: NftRuleset.CanonicalIP(ip), What: "external IP"))
                    .Concat(addresses.LoadBalancerIPs.Select(ip => (Ip: NftRuleset.CanonicalIP(ip), What: "load balancer IP")));
                var externalDrop = svc.ExternalTrafficLocal && local.Count == 0;
                foreach (var (ip, what) in externals)
                {
                    var key = $"{ip} . {proto} . {p}";
                    if (usable.Count > 0)
                    {
                        wants.Add(new Want(ServiceIps, key, $"goto external-{name}", spn, what));
                        if (externalDrop)
                        {
                            wants.Add(new Want(NoEndpointServices, key, "drop", spn, what));
                        }

                        if (what == "load balancer IP" && svc.SourceRanges.Count > 0)
                        {
                            wants.Add(new Want(FirewallIps, key, $"goto firewall-{name}", spn, what));
                        }
                    }
                    else
                    {
                        wants.Add(new Want(NoEndpointServices, key, Reject, spn, what));
                    }
                }

                if (port.NodePort > 0)
                {
                    var key = $"{proto} . {port.NodePort.ToString(CultureInfo.InvariantCulture)}";
                    if (usable.Count > 0)
                    {
                        wants.Add(new Want(ServiceNodeports, key, $"goto external-{name}", spn, "node port"));
                        if (externalDrop)
                        {
                            wants.Add(new Want(NoEndpointNodeports, key, "drop", spn, "node port"));
                        }
                    }
                    else
                    {
                        wants.Add(new Want(NoEndpointNodeports, key, Reject, spn, "node port"));
                    }
                }

                // Which endpoints each chain sends to, and where each endpoint chain DNATs.
                string EndpointChain(UsableEndpoint u) => endpointChains.TryGetValue((u.Address, u.Port), out var c) ? c
                    : NftNames.EndpointPrefix + NftNames.EndpointBase(svc.Namespace, svc.Name, proto, port.Name, u.Address, u.Port);
                if (usable.Count > 0)
                {
                    backends.Add((spn, "service-" + name, usable.Select(EndpointChain).ToHashSet(StringComparer.Ordinal)));
                }

                if (local.Count > 0 && (svc.InternalTrafficLocal || svc.ExternalTrafficLocal))
                {
                    backends.Add((spn, "local-" + name, local.Select(EndpointChain).ToHashSet(StringComparer.Ordinal)));
                }

                foreach (var u in usable)
                {
                    dnats[EndpointChain(u)] = (spn, ipv6 ? $"{u.Address}:{u.Port.ToString(CultureInfo.InvariantCulture)}" : u.Target);
                }
            }
        }

        if (!Layout(family, wants, clusterIps, rules, findings))
        {
            return;
        }

        CompareMaps(family, wants, rules, findings);
        CompareClusterIps(family, clusterIps, rules, findings);
        CompareBackends(family, backends, dnats, rules, findings);
        StaleObjects(family, known, rules, findings);
    }

    /// <summary>
    /// The table's own layout: none of kube-proxy's maps and chains (an emptied table, or someone else's) is an
    /// unknown-layout finding and nothing else is compared (false); each absent map, set or chain is a missing-object
    /// finding (an error when Services need it), each base chain that no longer jumps or looks up where kube-proxy's
    /// does a missing-rule. Without this, a map that is gone looks like a map with nothing to compare.
    /// </summary>
    private static bool Layout(string family, List<Want> wants, HashSet<string> clusterIps, NftRuleset rules, List<Finding> findings)
    {
        var table = $"{family} kube-proxy";
        if (!LayoutMaps.Any(m => rules.Maps.ContainsKey((family, m))) && !LayoutChains.Any(c => rules.Chains.ContainsKey((family, c))))
        {
            var what = rules.Chains.Keys.Count(k => k.Family == family) + rules.Maps.Keys.Count(k => k.Family == family) + rules.Sets.Keys.Count(k => k.Family == family);
            findings.Add(Findings.Make("unknown-layout", Severity.Error, $"table {table}",
                $"table {table} has none of kube-proxy's maps or chains ({string.Join(", ", LayoutMaps.Concat(LayoutChains))}){(what == 0 ? ": it is empty" : $": it holds {what} other object(s)")}; "
                + $"{wants.Count} destination(s) of the Services go nowhere",
                ("table", table), ("objects", what.ToString(CultureInfo.InvariantCulture)), ("expected", wants.Count.ToString(CultureInfo.InvariantCulture))));
            return false;
        }

        foreach (var map in LayoutMaps.Where(m => !rules.Maps.ContainsKey((family, m))))
        {
            var needed = wants.Count(w => w.Map == map);
            findings.Add(Findings.Make("missing-object", needed > 0 ? Severity.Error : Severity.Warning, $"map {table} {map}",
                needed > 0 ? $"table {table} has no map {map}: {needed} element(s) the Services need in it are nowhere ({string.Join(", ", wants.Where(w => w.Map == map).Select(w => w.Spn).Distinct(StringComparer.Ordinal).Take(5))})"
                    : $"table {table} has no map {map} (kube-proxy creates it on every sync; no Service needs an element in it now)",
                ("object", "map"), ("name", map), ("needed", needed.ToString(CultureInfo.InvariantCulture))));
        }

        // The layout with the cluster-ips set (kube-proxy 1.31+) checks it in cluster-ips-check; the early layout has neither.
        if (rules.Chains.ContainsKey((family, "cluster-ips-check")) && !rules.Sets.ContainsKey((family, ClusterIps)))
        {
            findings.Add(Findings.Make("missing-object", Severity.Warning, $"set {table} {ClusterIps}",
                $"table {table} has chain cluster-ips-check but no set {ClusterIps}: {clusterIps.Count} cluster IP(s) are not in it (traffic to their other ports is dropped instead of rejected)",
                ("object", "set"), ("name", ClusterIps), ("needed", clusterIps.Count.ToString(CultureInfo.InvariantCulture))));
        }

        foreach (var chain in LayoutChains.Where(c => !rules.Chains.ContainsKey((family, c))))
        {
            var needed = chain == "reject-chain" ? wants.Count(w => w.Verdict == Reject) : wants.Count;
            findings.Add(Findings.Make("missing-object", needed > 0 ? Severity.Error : Severity.Warning, $"chain {table} {chain}",
                $"table {table} has no chain {chain}{(needed > 0 ? $": {needed} destination(s) of the Services depend on it" : " (kube-proxy creates it on every sync)")}",
                ("object", "chain"), ("name", chain), ("needed", needed.ToString(CultureInfo.InvariantCulture))));
        }

        foreach (var (chain, target, why) in LayoutLinks)
        {
            if (rules.Chains.TryGetValue((family, chain), out var c) && !c.Targets.Contains(target))
            {
                var how = target.StartsWith('@') ? $"looks up no {target}" : $"does not jump to {target}";
                findings.Add(Findings.Make("missing-rule", Severity.Error, $"chain {table} {chain}", $"chain {chain} of table {table} {how} ({c.Rules} rule(s)): {why}",
                    ("chain", chain), ("expected", target)));
            }
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CompareMaps(string family, List<Want> wants, NftRuleset rules, List<Finding> findings)
    {
        var expected = new HashSet<(string, string)>();
        var byKey = wants.GroupBy(w => w.Key).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        foreach (var w in wants)
        {
            expected.Add((w.Map, w.Key));
            if (!rules.Maps.TryGetValue((family, w.Map), out var map))
            {
                continue; // a layout without this map (early nftables mode has no cluster-ips; none lacks the rest)
            }

            if (map.TryGetValue(w.Key, out var actual) && actual.Verdict == w.Verdict)
            {
                continue;
            }

            var subject = $"{w.Spn} {Destination(w.Key)}";
            if (actual is null)
            {
                findings.Add(w.Map is NoEndpointServices or NoEndpointNodeports
                    ? Findings.Make("missing-reject", Severity.Warning, subject, $"{w.Spn} has no usable endpoint for its {w.What} {Destination(w.Key)}, but {w.Map} holds no element for it (want: {w.Verdict})",
                        ("map", w.Map), ("key", w.Key), ("expected", w.Verdict))
                    : Findings.Make("missing-rule", Severity.Error, subject, $"no {w.Map} element sends {w.What} {Destination(w.Key)} of {w.Spn} to its chain (want: {w.Key} : {w.Verdict})",
                        ("map", w.Map), ("key", w.Key), ("expected", w.Verdict)));
            }
            else
            {
                findings.Add(Findings.Make("wrong-target", Severity.Error, subject, $"{w.Map} sends {w.What} {Destination(w.Key)} of {w.Spn} to \"{actual.Verdict}\", not \"{w.Verdict}\"",
                    ("map", w.Map), ("key", w.Key), ("expected", w.Verdict), ("actual", actual.Verdict)));
            }
        }

        foreach (var name in new[] { ServiceIps, ServiceNodeports, FirewallIps, NoEndpointServices, NoEndpointNodeports })
        {
            if (!rules.Maps.TryGetValue((family, name), out var map))
            {
                continue;
            }

            foreach (var (key, e) in map)
            {
                if (expected.Contains((name, key)))
                {
                    continue;
                }

                if (byKey.TryGetValue(key, out var owner))
                {
                    findings.Add(Findings.Make("stale-rule", Severity.Error, $"{owner.Spn} {Destination(key)}",
                        name is NoEndpointServices or NoEndpointNodeports
                            ? $"{name} still sends {owner.What} {Destination(key)} of {owner.Spn} to \"{e.Verdict}\", but it has usable endpoints"
                            : $"{name} sends {owner.What} {Destination(key)} of {owner.Spn} to \"{e.Verdict}\", which this state of the Service does not explain",
                        ("map", name), ("key", key), ("actual", e.Verdict)));
                }
                else if (name != FirewallIps || !byKey.ContainsKey(key))
                {
                    findings.Add(Findings.Make("stale-rule", Severity.Error, Destination(key),
                        $"{name} has {key} : {e.Verdict}{(e.Comment is null ? string.Empty : $" ({e.Comment})")}, but no Service has this destination",
                        ("map", name), ("key", key), ("actual", e.Verdict)));
                }
            }
        }
    }

    private static void CompareClusterIps(string family, HashSet<string> clusterIps, NftRuleset rules, List<Finding> findings)
    {
        if (!rules.Sets.TryGetValue((family, ClusterIps), out var set))
        {
            return; // the early layout has no cluster-ips set
        }

        foreach (var ip in clusterIps.Where(ip => !set.Contains(ip)).Order(StringComparer.Ordinal))
        {
            findings.Add(Findings.Make("missing-rule", Severity.Warning, ip, $"cluster IP {ip} is not in the cluster-ips set (traffic to its other ports is dropped instead of rejected)",
                ("set", ClusterIps), ("key", ip)));
        }

        foreach (var ip in set.Where(ip => !clusterIps.Contains(ip)).Order(StringComparer.Ordinal))
        {
            findings.Add(Findings.Make("stale-rule", Severity.Warning, ip, $"cluster-ips holds {ip}, which no Service has", ("set", ClusterIps), ("key", ip)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CompareBackends(string family, List<(string Spn, string Chain, HashSet<string> EndpointChains)> backends,
        Dictionary<string, (string Spn, string Target)> dnats, NftRuleset rules, List<Finding> findings)
    {
        foreach (var (spn, chain, endpoints) in backends)
        {
            if (!rules.Chains.TryGetValue((family, chain), out var c))
            {
                continue; // a missing chain shows as its map element missing (the kernel refuses a goto to no chain)
            }

            var actual = c.NumgenTargets.ToHashSet(StringComparer.Ordinal);
            if (!actual.SetEquals(endpoints) || c.NumgenMod != endpoints.Count)
            {
                findings.Add(Findings.Make("wrong-backend", Severity.Error, spn,
                    $"{chain} picks among [{string.Join(", ", actual.Order(StringComparer.Ordinal).Select(Short))}] (numgen mod {c.NumgenMod?.ToString(CultureInfo.InvariantCulture) ?? "none"}) "
                    + $"but the usable endpoints are [{string.Join(", ", endpoints.Order(StringComparer.Ordinal).Select(Short))}]",
                    ("chain", chain), ("missing", string.Join(",", endpoints.Except(actual).Order(StringComparer.Ordinal))), ("extra", string.Join(",", actual.Except(endpoints).Order(StringComparer.Ordinal)))));
            }
        }

        foreach (var (chain, (spn, target)) in dnats)
        {
            if (rules.Chains.TryGetValue((family, chain), out var c) && !(c.Dnats.Count == 1 && c.Dnats[0] == target))
            {
                findings.Add(Findings.Make("wrong-backend", Severity.Error, spn,
                    $"{chain} DNATs to [{string.Join(", ", c.Dnats)}], not to its endpoint {target}", ("chain", chain), ("expected", target), ("actual", string.Join(",", c.Dnats))));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StaleObjects(string family, HashSet<string> known, NftRuleset rules, List<Finding> findings)
    {
        var stale = rules.Chains.Where(c => c.Key.Family == family && NftNames.BaseOf(c.Key.Name) is { } b && !known.Contains(b))
            .OrderBy(c => c.Key.Name, StringComparer.Ordinal).ToList();
        if (stale.Count > 0)
        {
            // What still points at a chain: only worth collecting when some chain is stale.
            var referenced = rules.Chains.Where(c => c.Key.Family == family).SelectMany(c => c.Value.Targets)
                .Concat(rules.Maps.Where(m => m.Key.Family == family).SelectMany(m => m.Value.Values).Select(e => e.Verdict.Split(' ').Last()))
                .ToHashSet(StringComparer.Ordinal);
            foreach (var ((_, name), chain) in stale)
            {
                var how = chain.Rules > 0 ? $"{chain.Rules} rule(s)" : "empty";
                findings.Add(Findings.Make("stale-chain", Severity.Warning, name,
                    $"chain {name} ({how}{(referenced.Contains(name) ? ", still referenced" : string.Empty)}) belongs to no current Service or endpoint",
                    ("chain", name), ("rules", chain.Rules.ToString(CultureInfo.InvariantCulture)), ("referenced", referenced.Contains(name) ? "true" : "false")));
            }
        }

        foreach (var (f, name) in rules.Sets.Keys.Where(k => k.Family == family && k.Name.StartsWith(NftNames.AffinityPrefix, StringComparison.Ordinal)).OrderBy(k => k.Name, StringComparer.Ordinal))
        {
            if (!known.Contains(name[NftNames.AffinityPrefix.Length..]))
            {
                findings.Add(Findings.Make("stale-chain", Severity.Warning, name, $"affinity set {name} belongs to no current endpoint", ("set", name)));
            }
        }
    }

    // "172.30.0.41 . tcp . 80" → "172.30.0.41:80/tcp"; "tcp . 3001" → "*:3001/tcp" (a node port).
    private static string Destination(string key)
    {
        var parts = key.Split(" . ");
        return parts.Length switch
        {
            3 => $"{(parts[0].Contains(':', StringComparison.Ordinal) ? $"[{parts[0]}]" : parts[0])}:{parts[2]}/{parts[1]}",
            2 => $"*:{parts[1]}/{parts[0]}",
            _ => key,
        };
    }

    private static string Short(string chain) => chain.Length <= 60 ? chain : chain[..60] + "…";
}
