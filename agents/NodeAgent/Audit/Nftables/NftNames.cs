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

    /// <summary>A per-service chain or set name without its prefix ("service-", "endpoint-", ...); null for any other name.</summary>
    public static string? BaseOf(string name)
    {
        if (name.StartsWith(EndpointPrefix, StringComparison.Ordinal))
        {
            return name[EndpointPrefix.Length..];
        }

        if (name.StartsWith(AffinityPrefix, StringComparison.Ordinal))
        {
            return name[AffinityPrefix.Length..];
        }

        foreach (var p in ServicePrefixes)
        {
            if (name.StartsWith(p, StringComparison.Ordinal) && HasHash(name[p.Length..]))
            {
                return name[p.Length..];
            }
        }

        return null;
    }

    // "ULMVA6XW-..." : 8 base32 characters and a dash (so "service-ips" or "services" are not taken for one).
    private static bool HasHash(string rest) => rest.Length > 9 && rest[8] == '-' && rest[..8].All(c => Alphabet.Contains(c, StringComparison.Ordinal));

    public static string Base(string readable)
    {
        Span<char> hash = stackalloc char[8];
        Hash(readable, hash);
        var length = Math.Min(9 + readable.Length, MaxBase);
        return string.Create(length, (Hash: hash.ToString(), Readable: readable), static (span, s) =>
        {
            s.Hash.AsSpan().CopyTo(span);
            span[8] = '-';
            if (9 + s.Readable.Length <= MaxBase)
            {
                s.Readable.AsSpan().CopyTo(span[9..]);
            }
            else
            {
                s.Readable.AsSpan(0, MaxBase - 3 - 9).CopyTo(span[9..]);
                "...".AsSpan().CopyTo(span[(MaxBase - 3)..]);
            }
        });
    }

    // One hasher per thread, reused: creating a hash context per name costs more than hashing a short name.
    [ThreadStatic]
    private static IncrementalHash? _sha256;

    // The first 8 base32 characters need the first 5 bytes (40 bits) of the digest.
    private static void Hash(string readable, Span<char> chars)
    {
        var hasher = _sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var max = Encoding.UTF8.GetMaxByteCount(readable.Length);
        var bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        var n = Encoding.UTF8.GetBytes(readable, bytes);
        hasher.AppendData(bytes[..n]);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        hasher.GetHashAndReset(digest);
        long buffer = 0;
        foreach (var b in digest[..5])
        {
            buffer = (buffer << 8) | b;
        }

        for (var i = 0; i < 8; i++)
        {
            chars[i] = Alphabet[(int)((buffer >> (35 - (5 * i))) & 31)];
        }
    }
}
