using System.Globalization;
using System.Runtime.CompilerServices;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// The NAT audit's last step: what kube-proxy should have (<see cref="NatExpected"/>) against what the dump holds
/// (<see cref="NatRuleIndex"/>, <see cref="ServiceChainIndex"/>), as findings.
/// </summary>
internal static class NatComparison
{
    private static FindingFactory Findings => NatAudit.Findings;

    /// <summary>
    /// missing-rule, wrong-target, missing-reject and stale-rule for each expected destination, then stale-rule for
    /// each nat rule or REJECT of a destination no Service has.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rules(List<NatExpectation> expectations, NatRuleIndex index, IptablesDump dump, List<Finding> findings)
    {
        var expected = new HashSet<DestKey>();
        foreach (var e in expectations)
        {
            expected.Add(e.Key);
            var nat = index.Nat.TryGetValue(e.Key, out var nr) ? nr.First : -1;
            var reject = index.Reject.TryGetValue(e.Key, out var rr) ? rr.First : -1;
            if (e.WantNat)
            {
                WithEndpoints(e, nat, reject, index, dump, findings);
            }
            else
            {
                var block = e.WantDrop ? (index.Drop.TryGetValue(e.Key, out var dr) ? dr.First : -1) : reject;
                WithoutEndpoints(e, nat, block, dump, findings);
            }
        }

        Unexpected(expected, index, dump, findings);
    }

    /// <summary>wrong-backend: each service chain must send to exactly its port's usable endpoints.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backends(List<NatBackends> backends, ServiceChainIndex chains, NameTable names, List<Finding> findings)
    {
        var actual = new List<long>();
        foreach (var w in backends)
        {
            var chain = chains.ChainOf(w.Hash);
            if (chain < 0)
            {
                continue; // the NAT rule check reports a rule without its chain
            }

            chains.TargetsOf(chain, actual);
            actual.Sort();
            var got = NatKeys.Distinct([.. actual]);
            if (got.AsSpan().SequenceEqual(w.Targets))
            {
                continue;
            }

            var gotText = got.Select(k => NatKeys.TargetText(names, k)).ToList();
            var wantText = w.Targets.Select(k => NatKeys.TargetText(names, k)).ToList();
            findings.Add(Findings.Make("wrong-backend", Severity.Error, w.ServicePortName,
                $"{names[chain]} of {w.ServicePortName} sends to [{string.Join(", ", gotText.Order(StringComparer.Ordinal))}] but the ready endpoints are [{string.Join(", ", wantText.Order(StringComparer.Ordinal))}]",
                ("missing", string.Join(",", wantText.Except(gotText).Order(StringComparer.Ordinal))), ("extra", string.Join(",", gotText.Except(wantText).Order(StringComparer.Ordinal)))));
        }
    }

    // A destination with endpoints: a nat rule to a chain of its service port, and no REJECT.
    private static void WithEndpoints(in NatExpectation e, int nat, int reject, NatRuleIndex index, IptablesDump dump, List<Finding> findings)
    {
        if (nat < 0)
        {
            findings.Add(Findings.Make("missing-rule", Severity.Error, e.Subject,
                $"no nat rule sends {e.What.Text()} {e.Destination} of {e.ServicePortName} to KUBE-SVC-{e.Hash}",
                ("destination", e.Destination), ("expected_chain", $"KUBE-SVC-{e.Hash}")));
        }
        else if (!index.AnyJumpsTo(dump, nat, e.Hash, e.OldHash))
        {
            var r = dump.Rules[nat];
            findings.Add(Findings.Make("wrong-target", Severity.Error, e.Subject,
                $"the nat rule for {e.What.Text()} {e.Destination} of {e.ServicePortName} jumps to {r.Jump}, not a chain of this service (KUBE-*-{e.Hash})",
                ("destination", e.Destination), ("target", r.Jump ?? string.Empty), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
        }

        if (reject >= 0)
        {
            findings.Add(Findings.Make("stale-rule", Severity.Error, e.Subject,
                $"a filter REJECT refuses {e.What.Text()} {e.Destination} of {e.ServicePortName}, which has endpoints",
                ("destination", e.Destination), ("line", dump.RuleSpan[reject].Line.ToString(CultureInfo.InvariantCulture))));
        }
    }

    // A destination without endpoints: a REJECT (a DROP when its endpoints are all on other nodes under
    // internalTrafficPolicy Local), and no nat rule.
    private static void WithoutEndpoints(in NatExpectation e, int nat, int block, IptablesDump dump, List<Finding> findings)
    {
        if (block < 0)
        {
            findings.Add(Findings.Make("missing-reject", Severity.Warning, e.Subject,
                e.WantDrop
                    ? $"{e.ServicePortName} has no local endpoints (internalTrafficPolicy Local) but no filter DROP for {e.What.Text()} {e.Destination}"
                    : $"{e.ServicePortName} has no endpoints but no filter REJECT for {e.What.Text()} {e.Destination}",
                ("destination", e.Destination)));
        }

        if (nat >= 0)
        {
            var r = dump.Rules[nat];
            findings.Add(Findings.Make("stale-rule", Severity.Warning, e.Subject,
                $"nat rule for {e.What.Text()} {e.Destination} of {e.ServicePortName} jumps to {r.Jump}, but {(e.WantDrop ? "its endpoints are all on other nodes (internalTrafficPolicy Local)" : "the service has no endpoints")}",
                ("destination", e.Destination), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
        }
    }

    // stale-rule: a nat rule or REJECT for a destination no Service has.
    private static void Unexpected(HashSet<DestKey> expected, NatRuleIndex index, IptablesDump dump, List<Finding> findings)
    {
        foreach (var (d, (first, _)) in index.Nat)
        {
            if (!expected.Contains(d))
            {
                findings.Add(Stale(dump, d, first, nat: true));
            }
        }

        foreach (var (d, (first, _)) in index.Reject)
        {
            if (!expected.Contains(d))
            {
                findings.Add(Stale(dump, d, first, nat: false));
            }
        }
    }

    private static Finding Stale(IptablesDump dump, DestKey d, int rule, bool nat)
    {
        var r = dump.Rules[rule];
        var text = NatKeys.DestinationText(dump.Names, d);
        var line = ("line", r.Line.ToString(CultureInfo.InvariantCulture));
        return nat
            ? Findings.Make("stale-rule", Severity.Error, text, $"nat rule for {text} ({r.Comment ?? "no comment"}) jumps to {r.Jump}, but no Service has this destination",
                ("destination", text), ("target", r.Jump ?? string.Empty), line)
            : Findings.Make("stale-rule", Severity.Warning, text, $"filter REJECT for {text} ({r.Comment ?? "no comment"}), but no Service has this destination",
                ("destination", text), line);
    }
}
