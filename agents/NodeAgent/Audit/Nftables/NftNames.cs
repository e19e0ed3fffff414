using System.Security.Cryptography;
using System.Text;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// kube-proxy's nftables chain names: <c>HASH-readable</c>, where readable is <c>namespace/name/protocol/portName</c>
/// (and <c>__IP/port</c> for an endpoint, IPv6 colons as dots) and HASH the first 8 characters of the RFC 4648 base32
/// of its SHA-256; a base longer than 240 characters is cut to 237 plus "...".
/// </summary>
public static class NftNames
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    private const int MaxBase = 240;

    /// <summary>The per-service chain prefixes: cluster, node-local, external entry, LoadBalancerSourceRanges.</summary>
    public static readonly string[] ServicePrefixes = ["service-", "local-", "external-", "firewall-"];

    public const string EndpointPrefix = "endpoint-";
    public const string AffinityPrefix = "affinity-";

    public static string ServicePortBase(string ns, string name, string protocol, string portName) =>
        Base($"{ns}/{name}/{protocol.ToLowerInvariant()}/{portName}");

    public static string EndpointBase(string ns, string name, string protocol, string portName, string address, int port) =>
        Base($"{ns}/{name}/{protocol.ToLowerInvariant()}/{portName}__{address.Replace(':', '.')}/{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

    /// <summary>A chain or set name that only kube-proxy's per-service objects have: endpoint-, service-, ..., affinity-.</summary>
    public static bool IsPerService(string name) =>
        name.StartsWith(EndpointPrefix, StringComparison.Ordinal) || name.StartsWith(AffinityPrefix, StringComparison.Ordinal)
        || ServicePrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal) && HasHash(name[p.Length..]));

    // "ULMVA6XW-..." : 8 base32 characters and a dash (so "service-ips" or "services" are not taken for one).
    private static bool HasHash(string rest) => rest.Length > 9 && rest[8] == '-' && rest[..8].All(c => Alphabet.Contains(c, StringComparison.Ordinal));

    public static string Base(string readable)
    {
        var hash = Hash(readable);
        var name = $"{hash}-{readable}";
        return name.Length > MaxBase ? name[..(MaxBase - 3)] + "..." : name;
    }

    // The first 8 base32 characters need the first 5 bytes (40 bits) of the digest.
    private static string Hash(string readable)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(readable), digest);
        Span<char> chars = stackalloc char[8];
        long buffer = 0;
        foreach (var b in digest[..5])
        {
            buffer = (buffer << 8) | b;
        }

        for (var i = 0; i < 8; i++)
        {
            chars[i] = Alphabet[(int)((buffer >> (35 - (5 * i))) & 31)];
        }

        return new string(chars);
    }
}
