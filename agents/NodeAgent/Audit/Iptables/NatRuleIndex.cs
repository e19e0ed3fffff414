using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// The NAT audit's second step: what the dump holds for the Services' destinations, by destination. The nat rules of
/// KUBE-SERVICES and KUBE-NODEPORTS that jump to a service chain, and the filter REJECTs of KUBE-SERVICES,
/// KUBE-EXTERNAL-SERVICES and KUBE-NODEPORTS (and the DROPs of KUBE-SERVICES: a cluster IP with no local endpoint
/// under internalTrafficPolicy Local); each destination's rules as a chain through <see cref="Next"/>, in dump order.
/// </summary>
internal sealed class NatRuleIndex
{
    private readonly int[] _next;

    private NatRuleIndex(int rules)
    {
        _next = new int[rules];
    }

    /// <summary>Each destination's first and last nat rule sending it to a service chain (rule indexes).</summary>
    public Dictionary<DestKey, (int First, int Last)> Nat { get; } = [];

    /// <summary>Each destination's first and last filter REJECT.</summary>
    public Dictionary<DestKey, (int First, int Last)> Reject { get; } = [];

    /// <summary>Each destination's first and last filter DROP in KUBE-SERVICES.</summary>
    public Dictionary<DestKey, (int First, int Last)> Drop { get; } = [];

    /// <summary>The next rule of the same destination and kind after a rule, or -1.</summary>
    public int Next(int rule) => _next[rule];

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static NatRuleIndex Of(IptablesDump dump)
    {
        var names = dump.Names;
        var rules = dump.RuleSpan;
        int nat = names.Find("nat"), filter = names.Find("filter"), services = names.Find("KUBE-SERVICES"), nodePorts = names.Find("KUBE-NODEPORTS"),
            external = names.Find("KUBE-EXTERNAL-SERVICES"), reject = names.Find("REJECT"), drop = names.Find("DROP");
        var index = new NatRuleIndex(rules.Length);
        for (var i = 0; i < rules.Length; i++)
        {
            ref readonly var r = ref rules[i];
            if (r.Table == nat && (r.Chain == services || r.Chain == nodePorts) && r.Jump >= 0
                && ChainHash.IsServiceChain(names.Bytes(r.Jump), out _) && DestinationOf(dump, in r, nodePorts) is { } d)
            {
                index.Append(index.Nat, d, i);
            }
            else if (r.Table == filter && (r.Chain == services || r.Chain == external || r.Chain == nodePorts)
                && r.Jump == reject && reject >= 0 && DestinationOf(dump, in r, nodePorts) is { } rd)
            {
                index.Append(index.Reject, rd, i);
            }
            else if (r.Table == filter && r.Chain == services && r.Jump == drop && drop >= 0 && DestinationOf(dump, in r, nodePorts) is { } dd)
            {
                index.Append(index.Drop, dd, i);
            }
        }

        return index;
    }

    /// <summary>Whether any of the nat rules from <paramref name="first"/> on jumps to a chain of the service port (its hash, or its pre-1.10 one).</summary>
    public bool AnyJumpsTo(IptablesDump dump, int first, ChainHash hash, ChainHash? oldHash)
    {
        var rules = dump.RuleSpan;
        for (var i = first; i >= 0; i = _next[i])
        {
            if (ChainHash.IsServiceChain(dump.Names.Bytes(rules[i].Jump), out var h) && (h == hash || (oldHash is not null && h == oldHash)))
            {
                return true;
            }
        }

        return false;
    }

    private void Append(Dictionary<DestKey, (int First, int Last)> map, DestKey key, int rule)
    {
        _next[rule] = -1;
        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(map, key, out var exists);
        if (exists)
        {
            _next[slot.Last] = rule;
            slot.Last = rule;
        }
        else
        {
            slot = (rule, rule);
        }
    }

    private static DestKey? DestinationOf(IptablesDump dump, in RuleData r, int nodePorts)
    {
        if (r.Protocol < 0 || r.Port < 0)
        {
            return null;
        }

        // Node ports: in KUBE-NODEPORTS (nat), or a filter rule matching any local address; the 127.0.0.0/8 variant counts as the same.
        if (r.Chain == nodePorts || (r.Flags & RuleFlags.DestinationTypeLocal) != 0 || r.Destination.IsNone)
        {
            return r.Destination.IsNone || dump.Bytes(r.Destination).SequenceEqual("127.0.0.0/8"u8) ? new DestKey(-1, r.Protocol, r.Port) : null;
        }

        return (r.Flags & RuleFlags.DestinationNegated) != 0 ? null : new DestKey(NatKeys.AddressKey(dump.Names, dump.Bytes(r.Destination)), r.Protocol, r.Port);
    }
}
