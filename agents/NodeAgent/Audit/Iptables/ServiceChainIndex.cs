using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// Where each KUBE-SVC chain of the nat table sends to: the KUBE-SEP chains it jumps to and the --to-destination of
/// each (its first DNAT rule). One pass over the rules; chains and targets as numbers.
/// </summary>
internal sealed class ServiceChainIndex
{
    private readonly IptablesDump _dump;
    private readonly int _nat;
    private readonly byte[] _kind; // 0 not looked at, 1 KUBE-SEP-*, 2 KUBE-SVC-*, 3 other
    private readonly int[] _sepRule; // the first rule of a KUBE-SEP chain with --to-destination, + 1
    private readonly List<long> _jumps = []; // (service chain << 32) | endpoint chain, for every KUBE-SVC -> KUBE-SEP rule, sorted

    private ServiceChainIndex(IptablesDump dump, int nat)
    {
        _dump = dump;
        _nat = nat;
        _kind = new byte[dump.Names.Count];
        _sepRule = new int[dump.Names.Count];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ServiceChainIndex Of(IptablesDump dump)
    {
        var names = dump.Names;
        var rules = dump.RuleSpan;
        var index = new ServiceChainIndex(dump, names.Find("nat"));
        for (var i = 0; i < rules.Length; i++)
        {
            ref readonly var r = ref rules[i];
            if (r.Table != index._nat)
            {
                continue;
            }

            var chainKind = index.Kind(r.Chain);
            if (chainKind == 1 && !r.ToDestination.IsNone && index._sepRule[r.Chain] == 0)
            {
                index._sepRule[r.Chain] = i + 1;
            }
            else if (chainKind == 2 && r.Jump >= 0 && index.Kind(r.Jump) == 1)
            {
                index._jumps.Add(((long)r.Chain << 32) | (uint)r.Jump);
            }
        }

        index._jumps.Sort();
        return index;
    }

    /// <summary>The nat chain KUBE-SVC-<paramref name="hash"/>'s name id, or -1 when the dump has no such chain.</summary>
    public int ChainOf(ChainHash hash)
    {
        Span<byte> chainName = stackalloc byte[9 + 16];
        "KUBE-SVC-"u8.CopyTo(chainName);
        BinaryPrimitives.WriteUInt64LittleEndian(chainName[9..], hash.A);
        BinaryPrimitives.WriteUInt64LittleEndian(chainName[17..], hash.B);
        var chain = _dump.Names.Find(chainName);
        return chain >= 0 && _dump.HasChain(_nat, chain) ? chain : -1;
    }

    /// <summary>
    /// The targets <paramref name="chain"/> sends to, into <paramref name="into"/> (cleared first): each KUBE-SEP
    /// chain's DNAT target as a <see cref="NatKeys.TargetKey(NameTable, ReadOnlySpan{byte})"/>, or the chain itself
    /// (above <see cref="NatKeys.Unresolved"/>) when it has none.
    /// </summary>
    public void TargetsOf(int chain, List<long> into)
    {
        into.Clear();
        var rules = _dump.RuleSpan;
        var from = _jumps.BinarySearch((long)chain << 32);
        for (var j = from < 0 ? ~from : from; j < _jumps.Count && (int)(_jumps[j] >> 32) == chain; j++)
        {
            var endpointChain = (int)(_jumps[j] & 0xffffffff);
            into.Add(_sepRule[endpointChain] is var s and > 0
                ? NatKeys.TargetKey(_dump.Names, _dump.Bytes(rules[s - 1].ToDestination))
                : NatKeys.Unresolved | (uint)endpointChain);
        }
    }

    private byte Kind(int id)
    {
        if (_kind[id] == 0)
        {
            var b = _dump.Names.Bytes(id);
            _kind[id] = b.StartsWith("KUBE-SEP-"u8) ? (byte)1 : b.StartsWith("KUBE-SVC-"u8) ? (byte)2 : (byte)3;
        }

        return _kind[id];
    }
}
