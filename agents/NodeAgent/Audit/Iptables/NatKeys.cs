using System.Globalization;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// Addresses and endpoints as numbers, so the NAT audit compares the cluster's view and the dump without strings: an
/// IPv4 address is its 32 bits, an endpoint "a.b.c.d:port" (address &lt;&lt; 16) | port, anything else a name id in
/// the dump's <see cref="NameTable"/>. And back to text for the findings.
/// </summary>
internal static class NatKeys
{
    private const long NameBit = 1L << 40;
    private const long Named = 1L << 56;

    /// <summary>An endpoint chain whose DNAT target was not found: its chain's name id above this.</summary>
    public const long Unresolved = 2L << 56;

    public static long AddressKey(NameTable names, string address)
    {
        Span<byte> utf8 = stackalloc byte[128];
        return address.Length <= 40 && System.Text.Encoding.UTF8.TryGetBytes(address, utf8, out var n)
            ? AddressKey(names, utf8[..n])
            : NameBit | (uint)names.GetOrAdd(address);
    }

    public static long AddressKey(NameTable names, ReadOnlySpan<byte> address) =>
        Ipv4(address) is { } v4 ? v4 : NameBit | (uint)names.GetOrAdd(address);

    /// <summary>An endpoint "address:port": IPv4 as (address &lt;&lt; 16) | port, anything else by name.</summary>
    public static long TargetKey(NameTable names, UsableEndpoint u)
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

    public static long TargetKey(NameTable names, ReadOnlySpan<byte> target)
    {
        var colon = target.LastIndexOf((byte)':');
        if (colon > 0 && Ipv4(target[..colon]) is { } v4 && Number(target[(colon + 1)..]) is { } port and <= 65535)
        {
            return (v4 << 16) | (uint)port;
        }

        return Named | (uint)names.GetOrAdd(target);
    }

    public static string TargetText(NameTable names, long key) => key switch
    {
        >= Unresolved => "?" + names[(int)(key & 0xffffffff)],
        >= Named => names[(int)(key & 0xffffffff)],
        _ => $"{Ipv4Text(key >> 16)}:{(key & 0xffff).ToString(CultureInfo.InvariantCulture)}",
    };

    public static string DestinationText(NameTable names, DestKey d)
    {
        var address = d.Address == -1 ? "*" : d.Address >= NameBit ? names[(int)(d.Address & 0xffffffff)] : Ipv4Text(d.Address);
        return $"{address}:{d.Port.ToString(CultureInfo.InvariantCulture)}/{names[d.Protocol]}";
    }

    /// <summary>Sorted keys without repeats (in place when there are none).</summary>
    public static long[] Distinct(long[] sorted)
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
}
