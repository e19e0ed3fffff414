using System.Globalization;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// kube-proxy's nftables table: the verdict maps and chains every layout of its proxier has, and how the base chains
/// reach the maps. <see cref="Compare"/> checks a family's table has them.
/// </summary>
internal static class NftLayout
{
    public const string ServiceIps = "service-ips";
    public const string ServiceNodeports = "service-nodeports";
    public const string FirewallIps = "firewall-ips";
    public const string NoEndpointServices = "no-endpoint-services";
    public const string NoEndpointNodeports = "no-endpoint-nodeports";
    public const string ClusterIps = "cluster-ips";
    public const string Reject = "goto reject-chain";

    /// <summary>The verdict maps every layout of kube-proxy's nftables proxier creates on every sync.</summary>
    public static readonly string[] Maps = [ServiceIps, ServiceNodeports, NoEndpointServices, NoEndpointNodeports, FirewallIps];

    /// <summary>The chains every layout has that the Services' traffic passes (hooks, the dispatch, the reject helper).</summary>
    private static readonly string[] Chains = ["nat-prerouting", "nat-output", "services", "reject-chain"];

    /// <summary>What each chain must hold for the Services' traffic to reach the maps: a jump, or a vmap lookup ("@map").</summary>
    private static readonly (string Chain, string Target, string Why)[] Links =
    [
        ("nat-prerouting", "services", "traffic from pods and outside never reaches the Service maps"),
        ("nat-output", "services", "traffic from the node itself never reaches the Service maps"),
        ("services", "@" + ServiceIps, "no cluster, external or load balancer IP is sent to its Service"),
        ("services", "@" + ServiceNodeports, "no node port is sent to its Service"),
    ];

    /// <summary>
    /// The table's own layout: none of kube-proxy's maps and chains (an emptied table, or someone else's) is an
    /// unknown-layout finding and nothing else is compared (false); each absent map, set or chain is a missing-object
    /// finding (an error when Services need it), each base chain that no longer jumps or looks up where kube-proxy's
    /// does a missing-rule. Without this, a map that is gone looks like a map with nothing to compare.
    /// </summary>
    public static bool Compare(string family, NftExpected expected, NftRuleset rules, List<Finding> findings)
    {
        var table = $"{family} kube-proxy";
        var wants = expected.Wants;
        if (!Maps.Any(m => rules.Maps.ContainsKey((family, m))) && !Chains.Any(c => rules.Chains.ContainsKey((family, c))))
        {
            var what = rules.Chains.Keys.Count(k => k.Family == family) + rules.Maps.Keys.Count(k => k.Family == family) + rules.Sets.Keys.Count(k => k.Family == family);
            findings.Add(NftAudit.Findings.Make("unknown-layout", Severity.Error, $"table {table}",
                $"table {table} has none of kube-proxy's maps or chains ({string.Join(", ", Maps.Concat(Chains))}){(what == 0 ? ": it is empty" : $": it holds {what} other object(s)")}; "
                + $"{wants.Count} destination(s) of the Services go nowhere",
                ("table", table), ("objects", what.ToString(CultureInfo.InvariantCulture)), ("expected", wants.Count.ToString(CultureInfo.InvariantCulture))));
            return false;
        }

        foreach (var map in Maps.Where(m => !rules.Maps.ContainsKey((family, m))))
        {
            var needed = wants.Count(w => w.Map == map);
            findings.Add(NftAudit.Findings.Make("missing-object", needed > 0 ? Severity.Error : Severity.Warning, $"map {table} {map}",
                needed > 0 ? $"table {table} has no map {map}: {needed} element(s) the Services need in it are nowhere ({string.Join(", ", wants.Where(w => w.Map == map).Select(w => w.Spn).Distinct(StringComparer.Ordinal).Take(5))})"
                    : $"table {table} has no map {map} (kube-proxy creates it on every sync; no Service needs an element in it now)",
                ("object", "map"), ("name", map), ("needed", needed.ToString(CultureInfo.InvariantCulture))));
        }

        // The layout with the cluster-ips set (kube-proxy 1.31+) checks it in cluster-ips-check; the early layout has neither.
        if (rules.Chains.ContainsKey((family, "cluster-ips-check")) && !rules.Sets.ContainsKey((family, ClusterIps)))
        {
            findings.Add(NftAudit.Findings.Make("missing-object", Severity.Warning, $"set {table} {ClusterIps}",
                $"table {table} has chain cluster-ips-check but no set {ClusterIps}: {expected.ClusterIps.Count} cluster IP(s) are not in it (traffic to their other ports is dropped instead of rejected)",
                ("object", "set"), ("name", ClusterIps), ("needed", expected.ClusterIps.Count.ToString(CultureInfo.InvariantCulture))));
        }

        foreach (var chain in Chains.Where(c => !rules.Chains.ContainsKey((family, c))))
        {
            var needed = chain == "reject-chain" ? wants.Count(w => w.Verdict == Reject) : wants.Count;
            findings.Add(NftAudit.Findings.Make("missing-object", needed > 0 ? Severity.Error : Severity.Warning, $"chain {table} {chain}",
                $"table {table} has no chain {chain}{(needed > 0 ? $": {needed} destination(s) of the Services depend on it" : " (kube-proxy creates it on every sync)")}",
                ("object", "chain"), ("name", chain), ("needed", needed.ToString(CultureInfo.InvariantCulture))));
        }

        foreach (var (chain, target, why) in Links)
        {
            if (rules.Chains.TryGetValue((family, chain), out var c) && !c.Targets.Contains(target))
            {
                var how = target.StartsWith('@') ? $"looks up no {target}" : $"does not jump to {target}";
                findings.Add(NftAudit.Findings.Make("missing-rule", Severity.Error, $"chain {table} {chain}", $"chain {chain} of table {table} {how} ({c.Rules} rule(s)): {why}",
                    ("chain", chain), ("expected", target)));
            }
        }

        return true;
    }
}
