using System.Security.Cryptography;
using System.Text;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// kube-proxy's chain names: a prefix plus the first 16 characters of the RFC 4648 base32 of
/// sha256(servicePortName + lower-case protocol) (and + "ip:port" for KUBE-SEP chains), where servicePortName is
/// "namespace/name:portName", or "namespace/name" for an unnamed port (kube-proxy up to about 1.9 wrote
/// "namespace/name:" with the colon).
/// </summary>
public static class KubeProxyNames
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static string ServicePortName(string ns, string name, string? portName) => KubeProxy.ServicePortName.Of(ns, name, portName);

    public static string Hash(string servicePortName, string protocol, string? endpoint = null)
    {
        var input = string.Concat(servicePortName, protocol.ToLowerInvariant(), endpoint);
        var max = Encoding.UTF8.GetMaxByteCount(input.Length);
        Span<byte> utf8 = max <= 512 ? stackalloc byte[max] : new byte[max];
        Span<char> chars = stackalloc char[16];
        HashInto(utf8[..Encoding.UTF8.GetBytes(input, utf8)], chars);
        return new string(chars);
    }

    /// <summary>The chain hash of a service port, and for an unnamed port also the "ns/name:" one of kube-proxy up to 1.9.</summary>
    internal static (ChainHash Hash, ChainHash? Old) PortHashes(string ns, string name, Kubernetes.ServicePortSpec port)
    {
        var protocol = LowerProtocol(port.Protocol);
        return (PortHash(ns, name, port.Name, protocol), port.Name.Length == 0 ? PortHash(ns, name, port.Name, protocol, ":") : null);
    }

    /// <summary>A protocol as kube-proxy hashes it and iptables-save prints it: lower case, without a copy for the usual three.</summary>
    internal static string LowerProtocol(string protocol) => protocol switch
    {
        "TCP" or "tcp" => "tcp",
        "UDP" or "udp" => "udp",
        "SCTP" or "sctp" => "sctp",
        _ => protocol.ToLowerInvariant(),
    };

    /// <summary>
    /// <see cref="Hash"/> of a service port ("ns/name:port" + protocol, or "ns/name" + <paramref name="unnamedSuffix"/>
    /// + protocol for an unnamed port) without making a string: for 10,000 Services every audit.
    /// </summary>
    internal static ChainHash PortHash(string ns, string name, string portName, string protocolLower, string unnamedSuffix = "")
    {
        var length = ns.Length + name.Length + portName.Length + protocolLower.Length + unnamedSuffix.Length + 2;
        var max = Encoding.UTF8.GetMaxByteCount(length);
        Span<byte> utf8 = max <= 512 ? stackalloc byte[max] : new byte[max];
        var n = Encoding.UTF8.GetBytes(ns, utf8);
        utf8[n++] = (byte)'/';
        n += Encoding.UTF8.GetBytes(name, utf8[n..]);
        if (portName.Length > 0)
        {
            utf8[n++] = (byte)':';
            n += Encoding.UTF8.GetBytes(portName, utf8[n..]);
        }
        else
        {
            n += Encoding.UTF8.GetBytes(unnamedSuffix, utf8[n..]);
        }

        n += Encoding.UTF8.GetBytes(protocolLower, utf8[n..]);
        Span<char> chars = stackalloc char[16];
        HashInto(utf8[..n], chars);
        Span<byte> ascii = stackalloc byte[16];
        for (var i = 0; i < 16; i++)
        {
            ascii[i] = (byte)chars[i];
        }

        return ChainHash.Of(ascii);
    }

    public static string ServiceChain(string servicePortName, string protocol) => "KUBE-SVC-" + Hash(servicePortName, protocol);

    public static string EndpointChain(string servicePortName, string protocol, string endpoint) => "KUBE-SEP-" + Hash(servicePortName, protocol, endpoint);

    /// <summary>Every chain prefix kube-proxy uses for a service port (cluster, local, external, firewall, old xlb).</summary>
    public static readonly string[] ServiceChainPrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-"];

    internal static readonly byte[][] ServiceChainPrefixesUtf8 = [.. ServiceChainPrefixes.Select(Encoding.ASCII.GetBytes)];

    /// <summary>The first 16 base32 characters of sha256(<paramref name="input"/>): they need the digest's first 10 bytes (80 bits).</summary>
    private static void HashInto(ReadOnlySpan<byte> input, Span<char> chars)
    {
        Span<byte> data = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input, data);
        int buffer = 0, bits = 0, n = 0;
        foreach (var b in data[..10])
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                chars[n++] = Alphabet[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }
    }
}

/// <summary>The 16 base32 characters of a kube-proxy chain name's hash, as two numbers (compared without a string).</summary>
internal readonly record struct ChainHash(ulong A, ulong B)
{
    /// <summary>From the 16 ASCII characters at the end of a chain name.</summary>
    public static ChainHash Of(ReadOnlySpan<byte> sixteen) =>
        new(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(sixteen), System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(sixteen[8..]));

    /// <summary>
    /// Whether <paramref name="chain"/> is a KUBE-SVC/SVL/EXT/FW/XLB chain, and its hash when what follows the prefix
    /// is 16 characters long (anything else matches no service port's hash).
    /// </summary>
    public static bool IsServiceChain(ReadOnlySpan<byte> chain, out ChainHash? hash)
    {
        foreach (var prefix in KubeProxyNames.ServiceChainPrefixesUtf8)
        {
            if (chain.StartsWith(prefix))
            {
                hash = chain.Length == prefix.Length + 16 ? Of(chain[prefix.Length..]) : null;
                return true;
            }
        }

        hash = null;
        return false;
    }

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, A);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b[8..], B);
        return Encoding.ASCII.GetString(b);
    }
}
