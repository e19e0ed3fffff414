using System.Globalization;
using System.Runtime.CompilerServices;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using static Toolforge.Agents.NodeAgent.Audit.Nftables.NftLayout;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// The nftables audit's last step: what one family's table should hold (<see cref="NftExpected"/>) against what it
/// holds (<see cref="NftRuleset"/>, indexed by family and name as nft lists it), as findings. Keyed on map contents and
/// chain names, never on rule text, element order, handles or priorities.
/// </summary>
internal static class NftComparison
{
    private static FindingFactory Findings => NftAudit.Findings;

    /// <summary>missing-rule, missing-reject and wrong-target for each wanted element; stale-rule for each element no want explains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Maps(string family, List<NftWant> wants, NftRuleset rules, List<Finding> findings)
    {
        var expected = new HashSet<(string, string)>();
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
                    ? Findings.Make("missing-reject", Severity.Warning, subject, $"{w.Spn} has no usable endpoint for its {w.What.Text()} {Destination(w.Key)}, but {w.Map} holds no element for it (want: {w.Verdict})",
                        ("map", w.Map), ("key", w.Key), ("expected", w.Verdict))
                    : Findings.Make("missing-rule", Severity.Error, subject, $"no {w.Map} element sends {w.What.Text()} {Destination(w.Key)} of {w.Spn} to its chain (want: {w.Key} : {w.Verdict})",
                        ("map", w.Map), ("key", w.Key), ("expected", w.Verdict)));
            }
            else
            {
                findings.Add(Findings.Make("wrong-target", Severity.Error, subject, $"{w.Map} sends {w.What.Text()} {Destination(w.Key)} of {w.Spn} to \"{actual.Verdict}\", not \"{w.Verdict}\"",
                    ("map", w.Map), ("key", w.Key), ("expected", w.Verdict), ("actual", actual.Verdict)));
            }
        }

        Unexpected(family, wants, expected, rules, findings);
    }

    /// <summary>missing-rule for a cluster IP not in the cluster-ips set, stale-rule for one in it that no Service has.</summary>
    public static void ClusterIps(string family, HashSet<string> clusterIps, NftRuleset rules, List<Finding> findings)
    {
        if (!rules.Sets.TryGetValue((family, NftLayout.ClusterIps), out var set))
        {
            return; // the early layout has no cluster-ips set
        }

        foreach (var ip in clusterIps.Where(ip => !set.Contains(ip)).Order(StringComparer.Ordinal))
        {
            findings.Add(Findings.Make("missing-rule", Severity.Warning, ip, $"cluster IP {ip} is not in the cluster-ips set (traffic to its other ports is dropped instead of rejected)",
                ("set", NftLayout.ClusterIps), ("key", ip)));
        }

        foreach (var ip in set.Where(ip => !clusterIps.Contains(ip)).Order(StringComparer.Ordinal))
        {
            findings.Add(Findings.Make("stale-rule", Severity.Warning, ip, $"cluster-ips holds {ip}, which no Service has", ("set", NftLayout.ClusterIps), ("key", ip)));
        }
    }

    /// <summary>wrong-backend: a service-/local- chain picking among other endpoint chains, or an endpoint chain DNATing elsewhere.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backends(string family, List<NftChainBackends> backends, Dictionary<string, (string Spn, string Target)> dnats, NftRuleset rules, List<Finding> findings)
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

    /// <summary>stale-chain: a per-service or per-endpoint chain, or an affinity set, that no current Service explains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void StaleObjects(string family, HashSet<string> known, NftRuleset rules, List<Finding> findings)
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

    // stale-rule: an element of a verdict map that no want explains; named by the Service port whose destination it is, if any.
    private static void Unexpected(string family, List<NftWant> wants, HashSet<(string, string)> expected, NftRuleset rules, List<Finding> findings)
    {
        var byKey = wants.GroupBy(w => w.Key).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
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
                            ? $"{name} still sends {owner.What.Text()} {Destination(key)} of {owner.Spn} to \"{e.Verdict}\", but it has usable endpoints"
                            : $"{name} sends {owner.What.Text()} {Destination(key)} of {owner.Spn} to \"{e.Verdict}\", which this state of the Service does not explain",
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
