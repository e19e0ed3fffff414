using System.Globalization;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

public sealed record NatAuditOptions(bool ForbidNodePorts = false, string? NodeName = null, bool CheckBackends = true);

/// <summary>
/// Compares kube-proxy's rules (iptables-save) with what kube-proxy should have written for the cluster's Services:
/// <list type="bullet">
/// <item><c>missing-rule</c>: a service port with endpoints has no NAT rule for its cluster IP, external IP, load
/// balancer IP or node port;</item>
/// <item><c>wrong-target</c>: the rule is there but jumps to another service's chain;</item>
/// <item><c>missing-reject</c>: a service port without endpoints has no filter REJECT;</item>
/// <item><c>stale-rule</c>: a rule for an IP/port no Service has, a REJECT for a port that has endpoints, or NAT rules
/// for one that has none;</item>
/// <item><c>wrong-backend</c>: the KUBE-SVC chain sends traffic to endpoints other than the ready ones;</item>
/// <item><c>nodeport-forbidden</c>: a NodePort while policy keeps NodePorts at 0 (Toolforge's quota).</item>
/// </list>
/// Headless and ExternalName services expect nothing. No I/O: tests and the offline command call it directly.
/// </summary>
public static class NatAudit
{
    public const string Check = "kube-proxy.iptables";

    private sealed record Destination(string Address, string Protocol, int Port)
    {
        public override string ToString() => $"{Address}:{Port.ToString(CultureInfo.InvariantCulture)}/{Protocol}";
    }

    private sealed record Expectation(string ServicePortName, string What, Destination Destination, bool WantNat, string[] Hashes);

    public static List<Finding> Run(ClusterModel cluster, IptablesDump dump, NatAuditOptions options)
    {
        var findings = new List<Finding>();
        var expectations = new List<Expectation>();
        var slicesByService = cluster.Slices.GroupBy(s => $"{s.Namespace}/{s.ServiceName}").ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var backendsBySvcChain = new Dictionary<string, (string Spn, HashSet<string> Endpoints)>(StringComparer.Ordinal);

        foreach (var svc in cluster.Services)
        {
            if (svc.Type == "ExternalName" || svc.IsHeadless)
            {
                continue;
            }

            foreach (var port in svc.Ports)
            {
                var protocol = port.Protocol.ToLowerInvariant();
                var spn = KubeProxyNames.ServicePortName(svc.Namespace, svc.Name, port.Name);
                string[] hashes = port.Name.Length == 0
                    ? [KubeProxyNames.Hash(spn, protocol), KubeProxyNames.Hash(spn + ":", protocol)] // kube-proxy <= 1.9 wrote "ns/name:"
                    : [KubeProxyNames.Hash(spn, protocol)];

                var usable = UsableEndpoints.Of(slicesByService.GetValueOrDefault(svc.Key) ?? [], port);
                var internalUsable = svc.InternalTrafficLocal && options.NodeName is { } node
                    ? usable.Where(e => e.Node == node).ToList()
                    : usable;

                if (options.ForbidNodePorts && port.NodePort > 0)
                {
                    findings.Add(Make("nodeport-forbidden", Severity.Warning, spn,
                        $"{spn} has NodePort {port.NodePort}; policy keeps NodePorts at 0", ("node_port", port.NodePort.ToString(CultureInfo.InvariantCulture))));
                }

                expectations.Add(new Expectation(spn, "cluster IP", new Destination(svc.ClusterIP!, protocol, port.Port), internalUsable.Count > 0, hashes));
                foreach (var ip in svc.ExternalIPs)
                {
                    expectations.Add(new Expectation(spn, "external IP", new Destination(ip, protocol, port.Port), usable.Count > 0, hashes));
                }

                foreach (var ip in svc.LoadBalancerIPs)
                {
                    expectations.Add(new Expectation(spn, "load balancer IP", new Destination(ip, protocol, port.Port), usable.Count > 0, hashes));
                }

                if (port.NodePort > 0)
                {
                    expectations.Add(new Expectation(spn, "node port", new Destination("*", protocol, port.NodePort), usable.Count > 0, hashes));
                }

                if (usable.Count > 0)
                {
                    var targets = new HashSet<string>(usable.Count, StringComparer.Ordinal);
                    foreach (var u in usable)
                    {
                        targets.Add(u.Target);
                    }

                    foreach (var h in hashes)
                    {
                        backendsBySvcChain["KUBE-SVC-" + h] = (spn, targets);
                    }
                }
            }
        }

        // What is on the node.
        var nat = new Dictionary<Destination, List<IptablesRule>>();
        var rejects = new Dictionary<Destination, List<IptablesRule>>();
        foreach (var r in dump.Rules)
        {
            if (r.Table == "nat" && r.Chain is "KUBE-SERVICES" or "KUBE-NODEPORTS" && KubeProxyNames.IsServiceChain(r.Jump)
                && DestinationOf(r) is { } d)
            {
                Add(nat, d, r);
            }
            else if (r.Table == "filter" && r.Chain is "KUBE-SERVICES" or "KUBE-EXTERNAL-SERVICES" or "KUBE-NODEPORTS"
                && r.Jump == "REJECT" && DestinationOf(r) is { } rd)
            {
                Add(rejects, rd, r);
            }
        }

        var expected = new HashSet<Destination>();
        foreach (var e in expectations)
        {
            expected.Add(e.Destination);
            nat.TryGetValue(e.Destination, out var natRules);
            rejects.TryGetValue(e.Destination, out var rejectRules);
            if (e.WantNat)
            {
                if (natRules is null)
                {
                    findings.Add(Make("missing-rule", Severity.Error, Subject(e),
                        $"no nat rule sends {e.What} {e.Destination} of {e.ServicePortName} to KUBE-SVC-{e.Hashes.First()}",
                        ("destination", e.Destination.ToString()), ("expected_chain", "KUBE-SVC-" + e.Hashes.First())));
                }
                else if (!natRules.Exists(r => KubeProxyNames.HashOf(r.Jump) is { } h && Array.IndexOf(e.Hashes, h) >= 0))
                {
                    var r = natRules[0];
                    findings.Add(Make("wrong-target", Severity.Error, Subject(e),
                        $"the nat rule for {e.What} {e.Destination} of {e.ServicePortName} jumps to {r.Jump}, not a chain of this service (KUBE-*-{e.Hashes.First()})",
                        ("destination", e.Destination.ToString()), ("target", r.Jump ?? string.Empty), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
                }

                if (rejectRules is not null)
                {
                    findings.Add(Make("stale-rule", Severity.Error, Subject(e),
                        $"a filter REJECT refuses {e.What} {e.Destination} of {e.ServicePortName}, which has endpoints",
                        ("destination", e.Destination.ToString()), ("line", rejectRules[0].Line.ToString(CultureInfo.InvariantCulture))));
                }
            }
            else
            {
                if (rejectRules is null)
                {
                    findings.Add(Make("missing-reject", Severity.Warning, Subject(e),
                        $"{e.ServicePortName} has no endpoints but no filter REJECT for {e.What} {e.Destination}",
                        ("destination", e.Destination.ToString())));
                }

                if (natRules is not null)
                {
                    findings.Add(Make("stale-rule", Severity.Warning, Subject(e),
                        $"nat rule for {e.What} {e.Destination} of {e.ServicePortName} jumps to {natRules[0].Jump}, but the service has no endpoints",
                        ("destination", e.Destination.ToString()), ("line", natRules[0].Line.ToString(CultureInfo.InvariantCulture))));
                }
            }
        }

        foreach (var (d, rules) in nat.Where(kv => !expected.Contains(kv.Key)))
        {
            var r = rules[0];
            findings.Add(Make("stale-rule", Severity.Error, d.ToString(),
                $"nat rule for {d} ({r.Comment ?? "no comment"}) jumps to {r.Jump}, but no Service has this destination",
                ("destination", d.ToString()), ("target", r.Jump ?? string.Empty), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
        }

        foreach (var (d, rules) in rejects.Where(kv => !expected.Contains(kv.Key)))
        {
            findings.Add(Make("stale-rule", Severity.Warning, d.ToString(),
                $"filter REJECT for {d} ({rules[0].Comment ?? "no comment"}), but no Service has this destination",
                ("destination", d.ToString()), ("line", rules[0].Line.ToString(CultureInfo.InvariantCulture))));
        }

        if (options.CheckBackends)
        {
            CheckBackends(dump, backendsBySvcChain, findings);
        }

        return findings;
    }

    private static void CheckBackends(IptablesDump dump, Dictionary<string, (string Spn, HashSet<string> Endpoints)> wanted, List<Finding> findings)
    {
        var dnat = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var r in dump.Rules)
        {
            if (r.ToDestination is not null && r.Table == "nat" && r.Chain.StartsWith("KUBE-SEP-", StringComparison.Ordinal))
            {
                dnat.TryAdd(r.Chain, r.ToDestination);
            }
        }

        var actual = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (chain, (spn, endpoints)) in wanted)
        {
            if (!dump.HasChain("nat", chain))
            {
                continue; // the NAT rule check reports a rule without its chain
            }

            actual.Clear();
            foreach (var r in dump.InChain("nat", chain))
            {
                if (r.Jump?.StartsWith("KUBE-SEP-", StringComparison.Ordinal) == true)
                {
                    actual.Add(dnat.GetValueOrDefault(r.Jump) ?? "?" + r.Jump);
                }
            }

            if (actual.SetEquals(endpoints))
            {
                continue;
            }

            var missing = endpoints.Except(actual).Order(StringComparer.Ordinal);
            var extra = actual.Except(endpoints).Order(StringComparer.Ordinal);
            findings.Add(Make("wrong-backend", Severity.Error, spn,
                $"{chain} of {spn} sends to [{string.Join(", ", actual.Order(StringComparer.Ordinal))}] but the ready endpoints are [{string.Join(", ", endpoints.Order(StringComparer.Ordinal))}]",
                ("missing", string.Join(",", missing)), ("extra", string.Join(",", extra))));
        }
    }

    private static Destination? DestinationOf(IptablesRule r)
    {
        if (r.Protocol is null || r.DestinationPort is null || !int.TryParse(r.DestinationPort, NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            return null;
        }

        // Node ports: in KUBE-NODEPORTS (nat), or a filter rule matching any local address; the 127.0.0.0/8 variant counts as the same.
        if (r.Chain == "KUBE-NODEPORTS" || r.DestinationTypeLocal || r.Destination is null)
        {
            return r.Destination is null or "127.0.0.0/8" ? new Destination("*", r.Protocol, port) : null;
        }

        return r.DestinationNegated ? null : new Destination(r.Destination, r.Protocol, port);
    }

    private static void Add(Dictionary<Destination, List<IptablesRule>> map, Destination d, IptablesRule r)
    {
        if (!map.TryGetValue(d, out var list))
        {
            map[d] = list = [];
        }

        list.Add(r);
    }

    private static string Subject(Expectation e) => $"{e.ServicePortName} {e.Destination}";

    private static Finding Make(string kind, Severity severity, string subject, string message, params (string Key, string Value)[] details)
    {
        var f = new Finding { Kind = kind, Severity = severity, Subject = subject, Message = message, Check = Check };
        foreach (var (k, v) in details)
        {
            f.Details[k] = v;
        }

        return f;
    }
}
