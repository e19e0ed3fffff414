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

    public static string ServicePortName(string ns, string name, string? portName) =>
        string.IsNullOrEmpty(portName) ? $"{ns}/{name}" : $"{ns}/{name}:{portName}";

    public static string Hash(string servicePortName, string protocol, string? endpoint = null)
    {
        var input = string.Concat(servicePortName, protocol.ToLowerInvariant(), endpoint);
        var max = Encoding.UTF8.GetMaxByteCount(input.Length);
        Span<byte> utf8 = max <= 512 ? stackalloc byte[max] : new byte[max];
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..Encoding.UTF8.GetBytes(input, utf8)], hash);
        return Base32First16(hash);
    }

    public static string ServiceChain(string servicePortName, string protocol) => "KUBE-SVC-" + Hash(servicePortName, protocol);

    public static string EndpointChain(string servicePortName, string protocol, string endpoint) => "KUBE-SEP-" + Hash(servicePortName, protocol, endpoint);

    /// <summary>Every chain prefix kube-proxy uses for a service port (cluster, local, external, firewall, old xlb).</summary>
    public static readonly string[] ServiceChainPrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-"];

    public static bool IsServiceChain(string? chain) =>
        chain is not null && ServiceChainPrefixes.Any(p => chain.StartsWith(p, StringComparison.Ordinal));

    /// <summary>The hash part of a KUBE-SVC/SVL/EXT/FW/XLB chain name.</summary>
    public static string? HashOf(string? chain)
    {
        if (chain is null)
        {
            return null;
        }

        foreach (var p in ServiceChainPrefixes)
        {
            if (chain.StartsWith(p, StringComparison.Ordinal))
            {
                return chain[p.Length..];
            }
        }

        return null;
    }

    // The first 16 base32 characters need the first 10 bytes (80 bits) of the digest.
    private static string Base32First16(ReadOnlySpan<byte> data)
    {
        Span<char> chars = stackalloc char[16];
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

        return new string(chars);
    }
}
