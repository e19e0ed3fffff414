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

    private enum What : byte
    {
        ClusterIP,
        ExternalIP,
        LoadBalancerIP,
        NodePort,
    }

    private static string Text(What w) => w switch
    {
        What.ClusterIP => "cluster IP",
        What.ExternalIP => "external IP",
        What.LoadBalancerIP => "load balancer IP",
        _ => "node port",
    };

    /// <summary>
    /// Where a rule sends from: an IPv4 address (canonical dotted quad) as its number, "*" (any local address: node
    /// ports) as -1, anything else (IPv6) as a name id above 2^40; the protocol's name id; the port.
    /// </summary>
    private readonly record struct DestKey(long Address, int Protocol, int Port);

    private record struct Expectation
    {
        public ServiceSpec Service;
        public ServicePortSpec Port;
        public What What;
        public string Address; // "*" for a node port
        public string Protocol;
        public int DestinationPort;
        public DestKey Key;
        public bool WantNat;
        public ChainHash Hash;
        public ChainHash? OldHash; // kube-proxy <= 1.9's "ns/name:" for an unnamed port

        public readonly string ServicePortName => KubeProxyNames.ServicePortName(Service.Namespace, Service.Name, Port.Name);

        public readonly string Destination => $"{Address}:{DestinationPort.ToString(CultureInfo.InvariantCulture)}/{Protocol}";

        public readonly string Subject => $"{ServicePortName} {Destination}";
    }

    private sealed class Wanted(ChainHash hash, ServiceSpec service, ServicePortSpec port, long[] targets)
    {
        public ChainHash Hash { get; } = hash;

        public string ServicePortName => KubeProxyNames.ServicePortName(service.Namespace, service.Name, port.Name);

        public long[] Targets { get; } = targets;
    }

    public static List<Finding> Run(ClusterModel cluster, IptablesDump dump, NatAuditOptions options)
    {
        var names = dump.Names;
        var findings = new List<Finding>();
        var expectations = new List<Expectation>(cluster.Services.Count * 2);
        var wanted = new List<Wanted>();
        var protocols = new Dictionary<string, int>(StringComparer.Ordinal);
        var slicesByService = new Dictionary<(string, string), List<EndpointSliceSpec>>();
        foreach (var slice in cluster.Slices)
        {
            if (!slicesByService.TryGetValue((slice.Namespace, slice.ServiceName), out var list))
            {
                slicesByService[(slice.Namespace, slice.ServiceName)] = list = new List<EndpointSliceSpec>(1);
            }

            list.Add(slice);
        }

        foreach (var svc in cluster.Services)
        {
            if (svc.Type == "ExternalName" || svc.IsHeadless)
            {
                continue;
            }

            var hashes = svc.KubeProxyHashes;
            var slices = slicesByService.GetValueOrDefault((svc.Namespace, svc.Name)) ?? [];
            for (var p = 0; p < svc.Ports.Count; p++)
            {
                var port = svc.Ports[p];
                var (hash, oldHash) = hashes[p];
                var protocol = KubeProxyNames.LowerProtocol(port.Protocol);
                var protocolId = protocols.TryGetValue(protocol, out var pid) ? pid : protocols[protocol] = names.GetOrAdd(protocol);
                var usable = UsableEndpoints.Of(slices, port);
                var internalUsable = svc.InternalTrafficLocal && options.NodeName is { } node ? usable.Count(e => e.Node == node) : usable.Count;

                if (options.ForbidNodePorts && port.NodePort > 0)
                {
                    var spn = KubeProxyNames.ServicePortName(svc.Namespace, svc.Name, port.Name);
                    findings.Add(Make("nodeport-forbidden", Severity.Warning, spn,
                        $"{spn} has NodePort {port.NodePort}; policy keeps NodePorts at 0", ("node_port", port.NodePort.ToString(CultureInfo.InvariantCulture))));
                }

                var e = new Expectation
                {
                    Service = svc, Port = port, What = What.ClusterIP, Address = svc.ClusterIP!, Protocol = protocol, DestinationPort = port.Port,
                    Key = new DestKey(AddressKey(names, svc.ClusterIP!), protocolId, port.Port), WantNat = internalUsable > 0, Hash = hash, OldHash = oldHash,
                };
                expectations.Add(e);
                foreach (var ip in svc.ExternalIPs)
                {
                    expectations.Add(e with { What = What.ExternalIP, Address = ip, Key = e.Key with { Address = AddressKey(names, ip) }, WantNat = usable.Count > 0 });
                }

                foreach (var ip in svc.LoadBalancerIPs)
                {
                    expectations.Add(e with { What = What.LoadBalancerIP, Address = ip, Key = e.Key with { Address = AddressKey(names, ip) }, WantNat = usable.Count > 0 });
                }

                if (port.NodePort > 0)
                {
                    expectations.Add(e with { What = What.NodePort, Address = "*", DestinationPort = port.NodePort, Key = new DestKey(-1, protocolId, port.NodePort), WantNat = usable.Count > 0 });
                }

                if (usable.Count > 0)
                {
                    var targets = new long[usable.Count];
                    for (var i = 0; i < usable.Count; i++)
                    {
                        targets[i] = TargetKey(names, usable[i]);
                    }

                    Array.Sort(targets);
                    targets = Distinct(targets);
                    wanted.Add(new Wanted(hash, svc, port, targets));
                    if (oldHash is { } o)
                    {
                        wanted.Add(new Wanted(o, svc, port, targets));
                    }
                }
            }
        }

        // What is on the node: the rules sending a destination to a service chain (nat), or refusing it (filter).
        var rules = dump.RuleSpan;
        int nat = names.Find("nat"), filter = names.Find("filter"), services = names.Find("KUBE-SERVICES"), nodePorts = names.Find("KUBE-NODEPORTS"),
            external = names.Find("KUBE-EXTERNAL-SERVICES"), reject = names.Find("REJECT");
        var next = new int[rules.Length];
        var natRules = new Dictionary<DestKey, (int First, int Last)>();
        var rejectRules = new Dictionary<DestKey, (int First, int Last)>();
        for (var i = 0; i < rules.Length; i++)
        {
            ref readonly var r = ref rules[i];
            if (r.Table == nat && (r.Chain == services || r.Chain == nodePorts) && r.Jump >= 0
                && ChainHash.IsServiceChain(names.Bytes(r.Jump), out _) && DestinationOf(dump, in r, nodePorts) is { } d)
            {
                Append(natRules, d, i, next);
            }
            else if (r.Table == filter && (r.Chain == services || r.Chain == external || r.Chain == nodePorts)
                && r.Jump == reject && reject >= 0 && DestinationOf(dump, in r, nodePorts) is { } rd)
            {
                Append(rejectRules, rd, i, next);
            }
        }

        var expected = new HashSet<DestKey>();
        foreach (var e in expectations)
        {
            expected.Add(e.Key);
            var hasNat = natRules.TryGetValue(e.Key, out var nr);
            var hasReject = rejectRules.TryGetValue(e.Key, out var rr);
            if (e.WantNat)
            {
                if (!hasNat)
                {
                    findings.Add(Make("missing-rule", Severity.Error, e.Subject,
                        $"no nat rule sends {Text(e.What)} {e.Destination} of {e.ServicePortName} to KUBE-SVC-{e.Hash}",
                        ("destination", e.Destination), ("expected_chain", $"KUBE-SVC-{e.Hash}")));
                }
                else if (!AnyJumpsTo(dump, nr.First, next, e.Hash, e.OldHash))
                {
                    var r = dump.Rules[nr.First];
                    findings.Add(Make("wrong-target", Severity.Error, e.Subject,
                        $"the nat rule for {Text(e.What)} {e.Destination} of {e.ServicePortName} jumps to {r.Jump}, not a chain of this service (KUBE-*-{e.Hash})",
                        ("destination", e.Destination), ("target", r.Jump ?? string.Empty), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
                }

                if (hasReject)
                {
                    findings.Add(Make("stale-rule", Severity.Error, e.Subject,
                        $"a filter REJECT refuses {Text(e.What)} {e.Destination} of {e.ServicePortName}, which has endpoints",
                        ("destination", e.Destination), ("line", rules[rr.First].Line.ToString(CultureInfo.InvariantCulture))));
                }
            }
            else
            {
                if (!hasReject)
                {
                    findings.Add(Make("missing-reject", Severity.Warning, e.Subject,
                        $"{e.ServicePortName} has no endpoints but no filter REJECT for {Text(e.What)} {e.Destination}",
                        ("destination", e.Destination)));
                }

                if (hasNat)
                {
                    var r = dump.Rules[nr.First];
                    findings.Add(Make("stale-rule", Severity.Warning, e.Subject,
                        $"nat rule for {Text(e.What)} {e.Destination} of {e.ServicePortName} jumps to {r.Jump}, but the service has no endpoints",
                        ("destination", e.Destination), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
                }
            }
        }

        foreach (var (d, (first, _)) in natRules)
        {
            if (!expected.Contains(d))
            {
                var r = dump.Rules[first];
                var text = DestinationText(names, d);
                findings.Add(Make("stale-rule", Severity.Error, text,
                    $"nat rule for {text} ({r.Comment ?? "no comment"}) jumps to {r.Jump}, but no Service has this destination",
                    ("destination", text), ("target", r.Jump ?? string.Empty), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
            }
        }

        foreach (var (d, (first, _)) in rejectRules)
        {
            if (!expected.Contains(d))
            {
                var r = dump.Rules[first];
                var text = DestinationText(names, d);
                findings.Add(Make("stale-rule", Severity.Warning, text,
                    $"filter REJECT for {text} ({r.Comment ?? "no comment"}), but no Service has this destination",
                    ("destination", text), ("line", r.Line.ToString(CultureInfo.InvariantCulture))));
            }
        }

        if (options.CheckBackends)
        {
            CheckBackends(dump, wanted, nat, findings);
        }

        return findings;
    }

    /// <summary>
    /// wrong-backend: each service chain (KUBE-SVC-hash) must send to exactly the ready endpoints: the DNAT targets of
    /// the KUBE-SEP chains it jumps to. One pass over the rules; chains and targets compared as numbers.
    /// </summary>
    private static void CheckBackends(IptablesDump dump, List<Wanted> wanted, int nat, List<Finding> findings)
    {
        var names = dump.Names;
        var rules = dump.RuleSpan;
        var chainCount = names.Count;
        var kind = new byte[chainCount]; // 0 not looked at, 1 KUBE-SEP-*, 2 KUBE-SVC-*, 3 other
        var sepRule = new int[chainCount]; // the first rule of a KUBE-SEP chain with --to-destination, + 1
        var jumps = new List<long>(); // (service chain << 32) | endpoint chain, for every KUBE-SVC -> KUBE-SEP rule
        for (var i = 0; i < rules.Length; i++)
        {
            ref readonly var r = ref rules[i];
            if (r.Table != nat)
            {
                continue;
            }

            var chainKind = Kind(names, kind, r.Chain);
            if (chainKind == 1 && !r.ToDestination.IsNone && sepRule[r.Chain] == 0)
            {
                sepRule[r.Chain] = i + 1;
            }
            else if (chainKind == 2 && r.Jump >= 0 && Kind(names, kind, r.Jump) == 1)
            {
                jumps.Add(((long)r.Chain << 32) | (uint)r.Jump);
            }
        }

        jumps.Sort();
        Span<byte> chainName = stackalloc byte[9 + 16];
        "KUBE-SVC-"u8.CopyTo(chainName);
        var actual = new List<long>();
        foreach (var w in wanted)
        {
            WriteHash(w.Hash, chainName[9..]);
            var chain = names.Find(chainName);
            if (chain < 0 || !dump.HasChain(nat, chain))
            {
                continue; // the NAT rule check reports a rule without its chain
            }

            actual.Clear();
            var from = jumps.BinarySearch((long)chain << 32);
            for (var j = from < 0 ? ~from : from; j < jumps.Count && (int)(jumps[j] >> 32) == chain; j++)
            {
                var endpointChain = (int)(jumps[j] & 0xffffffff);
                actual.Add(sepRule[endpointChain] is var s and > 0
                    ? TargetKey(names, dump.Bytes(rules[s - 1].ToDestination))
                    : Unresolved | (uint)endpointChain);
            }

            actual.Sort();
            var got = Distinct([.. actual]);
            if (got.AsSpan().SequenceEqual(w.Targets))
            {
                continue;
            }

            var gotText = got.Select(k => TargetText(names, k)).ToList();
            var wantText = w.Targets.Select(k => TargetText(names, k)).ToList();
            var chainText = names[chain];
            findings.Add(Make("wrong-backend", Severity.Error, w.ServicePortName,
                $"{chainText} of {w.ServicePortName} sends to [{string.Join(", ", gotText.Order(StringComparer.Ordinal))}] but the ready endpoints are [{string.Join(", ", wantText.Order(StringComparer.Ordinal))}]",
                ("missing", string.Join(",", wantText.Except(gotText).Order(StringComparer.Ordinal))), ("extra", string.Join(",", gotText.Except(wantText).Order(StringComparer.Ordinal)))));
        }
    }

    private static byte Kind(NameTable names, byte[] kind, int id)
    {
        if (kind[id] == 0)
        {
            var b = names.Bytes(id);
            kind[id] = b.StartsWith("KUBE-SEP-"u8) ? (byte)1 : b.StartsWith("KUBE-SVC-"u8) ? (byte)2 : (byte)3;
        }

        return kind[id];
    }

    private static void WriteHash(ChainHash h, Span<byte> into)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(into, h.A);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(into[8..], h.B);
    }

    private static bool AnyJumpsTo(IptablesDump dump, int first, int[] next, ChainHash hash, ChainHash? oldHash)
    {
        var rules = dump.RuleSpan;
        for (var i = first; i >= 0; i = next[i])
        {
            if (ChainHash.IsServiceChain(dump.Names.Bytes(rules[i].Jump), out var h) && (h == hash || (oldHash is not null && h == oldHash)))
            {
                return true;
            }
        }

        return false;
    }

    private static void Append(Dictionary<DestKey, (int First, int Last)> map, DestKey key, int rule, int[] next)
    {
        next[rule] = -1;
        ref var slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(map, key, out var exists);
        if (exists)
        {
            next[slot.Last] = rule;
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

        return (r.Flags & RuleFlags.DestinationNegated) != 0 ? null : new DestKey(AddressKey(dump.Names, dump.Bytes(r.Destination)), r.Protocol, r.Port);
    }

    private const long NameBit = 1L << 40;
    private const long Named = 1L << 56;
    private const long Unresolved = 2L << 56;

    private static long AddressKey(NameTable names, string address)
    {
        Span<byte> utf8 = stackalloc byte[128];
        return address.Length <= 40 && System.Text.Encoding.UTF8.TryGetBytes(address, utf8, out var n)
            ? AddressKey(names, utf8[..n])
            : NameBit | (uint)names.GetOrAdd(address);
    }

    private static long AddressKey(NameTable names, ReadOnlySpan<byte> address) =>
        Ipv4(address) is { } v4 ? v4 : NameBit | (uint)names.GetOrAdd(address);

    /// <summary>An endpoint "address:port": IPv4 as (address &lt;&lt; 16) | port, anything else by name.</summary>
    private static long TargetKey(NameTable names, UsableEndpoint u)
    {
        if (u.Address.Length <= 15 && (uint)u.Port <= 65535)
        {
            Span<byte> utf8 = stackalloc byte[16];
            if (System.Text.Encoding.ASCII.TryGetBytes(u.Address, utf8, out var n) && Ipv4(utf8[..n]) is { } v4)
            {
                return (v4 << 16) | (uint)u.Port;
            }
        }

        return Named | (uint)names.GetOrAdd(u.Target);
    }

    private static long TargetKey(NameTable names, ReadOnlySpan<byte> target)
    {
        var colon = target.LastIndexOf((byte)':');
        if (colon > 0 && Ipv4(target[..colon]) is { } v4 && Number(target[(colon + 1)..]) is { } port and <= 65535)
        {
            return (v4 << 16) | (uint)port;
        }

        return Named | (uint)names.GetOrAdd(target);
    }

    private static string TargetText(NameTable names, long key) => key switch
    {
        >= Unresolved => "?" + names[(int)(key & 0xffffffff)],
        >= Named => names[(int)(key & 0xffffffff)],
        _ => $"{Ipv4Text(key >> 16)}:{(key & 0xffff).ToString(CultureInfo.InvariantCulture)}",
    };

    private static string DestinationText(NameTable names, DestKey d)
    {
        var address = d.Address == -1 ? "*" : d.Address >= NameBit ? names[(int)(d.Address & 0xffffffff)] : Ipv4Text(d.Address);
        return $"{address}:{d.Port.ToString(CultureInfo.InvariantCulture)}/{names[d.Protocol]}";
    }

    private static string Ipv4Text(long v) =>
        string.Create(CultureInfo.InvariantCulture, $"{(v >> 24) & 255}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}");

    /// <summary>A dotted quad as the API and iptables-save write it (no leading zeros), or null.</summary>
    private static long? Ipv4(ReadOnlySpan<byte> s)
    {
        long value = 0;
        var parts = 0;
        var i = 0;
        while (parts < 4)
        {
            var start = i;
            var part = 0;
            while (i < s.Length && s[i] is >= (byte)'0' and <= (byte)'9' && i - start < 3)
            {
                part = (part * 10) + (s[i++] - '0');
            }

            if (i == start || part > 255 || (i - start > 1 && s[start] == (byte)'0'))
            {
                return null;
            }

            value = (value << 8) | (uint)part;
            parts++;
            if (parts < 4)
            {
                if (i >= s.Length || s[i] != (byte)'.')
                {
                    return null;
                }

                i++;
            }
        }

        return i == s.Length ? value : null;
    }

    private static int? Number(ReadOnlySpan<byte> s)
    {
        if (s.Length is 0 or > 5 || (s.Length > 1 && s[0] == (byte)'0'))
        {
            return null;
        }

        var n = 0;
        foreach (var b in s)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return null;
            }

            n = (n * 10) + (b - '0');
        }

        return n;
    }

    private static long[] Distinct(long[] sorted)
    {
        var n = 0;
        for (var i = 0; i < sorted.Length; i++)
        {
            if (i == 0 || sorted[i] != sorted[i - 1])
            {
                sorted[n++] = sorted[i];
            }
        }

        return n == sorted.Length ? sorted : sorted[..n];
    }

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
