using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>
/// Addresses from the API as kube-proxy reads them (netutils.ParseIPSloppy): one canonical form for the iptables and
/// nftables audits alike, so a Service whose cluster IP the API holds as 172.30.0.041 is expected at 172.30.0.41.
/// </summary>
public static class IPAddresses
{
    /// <summary>
    /// An address as kube-proxy writes it: IPv4 octets read as decimal even with leading zeros (the API may hold
    /// 172.30.0.041, which is 41, as Kubernetes' sloppy parser reads it), IPv6 in its canonical form; anything else as is.
    /// </summary>
    public static string Canonical(string s)
    {
        if (s.Contains(':', StringComparison.Ordinal))
        {
            return IPAddress.TryParse(s, out var v6) ? v6.ToString() : s;
        }

        if (IsPlainIPv4(s))
        {
            return s;
        }

        var parts = s.Split('.');
        if (parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit)))
        {
            var octets = parts.Select(p => int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            if (octets.All(o => o <= 255))
            {
                return string.Join('.', octets);
            }
        }

        return s;
    }

    // Four dot-separated decimal octets ≤ 255 without leading zeros: already canonical (the common case, no allocation).
    private static bool IsPlainIPv4(string s)
    {
        var dots = 0;
        var value = 0;
        var digits = 0;
        var first = '0';
        foreach (var c in s)
        {
            if (c == '.')
            {
                if (digits == 0 || (digits > 1 && first == '0'))
                {
                    return false;
                }

                dots++;
                (value, digits) = (0, 0);
            }
            else if (char.IsAsciiDigit(c))
            {
                first = digits == 0 ? c : first;
                value = (value * 10) + (c - '0');
                if (++digits > 3 || value > 255)
                {
                    return false;
                }
            }
            else
            {
                return false;
            }
        }

        return dots == 3 && digits > 0 && !(digits > 1 && first == '0');
    }

    /// <summary>Whether kube-proxy could read <paramref name="s"/> as an address (IPv4 octets up to 255, leading zeros allowed; IPv6).</summary>
    public static bool IsValid(string s) =>
        s.Contains(':', StringComparison.Ordinal)
            ? IPAddress.TryParse(s, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6 && !s.Contains('%', StringComparison.Ordinal)
            : IsPlainIPv4(Canonical(s));
}
