using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Toolforge.Agents.NodeAgent.Audit.Conntrack;

/// <summary>One flow of `conntrack -L -o extended`: its original and its reply tuple.</summary>
public sealed record ConntrackEntry(string Protocol, string OrigSource, int OrigSourcePort, string OrigDestination, int OrigDestinationPort,
    string ReplySource, int ReplySourcePort)
{
    /// <summary>The flow as an admin reads it: "udp 10.0.0.5:5000 -> 172.30.0.41:53 (reply from 10.180.0.9:53)".</summary>
    public override string ToString() => $"{Protocol} {Endpoint(OrigSource, OrigSourcePort)} -> {Endpoint(OrigDestination, OrigDestinationPort)} (reply from {Endpoint(ReplySource, ReplySourcePort)})";

    public string Key => $"{Protocol} {OrigSource} {OrigSourcePort} {OrigDestination} {OrigDestinationPort}";

    private static string Endpoint(string ip, int port) =>
        ip.Contains(':', StringComparison.Ordinal) ? $"[{ip}]:{port.ToString(CultureInfo.InvariantCulture)}" : $"{ip}:{port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Parses `conntrack -L -o extended` ("ipv4 2 udp 17 119 src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. dst=..
    /// sport=.. dport=.. mark=0 use=1"): the first src/dst/sport/dport are the original direction, the second the
    /// reply. Lines that are not such a flow (conntrack's own summary, entries without ports) are skipped.
    /// </summary>
    public static List<ConntrackEntry> Parse(string text)
    {
        var list = new List<ConntrackEntry>();
        var bytes = Encoding.UTF8.GetBytes(text).AsSpan();
        foreach (var line in bytes.Split((byte)'\n'))
        {
            if (ParseLine(bytes[line]) is { } e)
            {
                list.Add(e);
            }
        }

        return list;
    }

    /// <summary>One line of `conntrack -L -o extended` as it is read (see <see cref="Parse"/>); null when it is not a flow with ports.</summary>
    public static ConntrackEntry? ParseLine(ReadOnlySpan<byte> line)
    {
        string? family = null, proto = null, src0 = null, src1 = null, dst0 = null;
        int sport0 = -1, sport1 = -1, dport0 = -1;
        var field = 0;
        foreach (var range in line.Split((byte)' '))
        {
            var f = line[range];
            if (f.IsEmpty)
            {
                continue;
            }

            switch (field++)
            {
                case 0:
                    family = f.SequenceEqual("ipv4"u8) ? "ipv4" : f.SequenceEqual("ipv6"u8) ? "ipv6" : null;
                    if (family is null)
                    {
                        return null;
                    }

                    continue;
                case 2:
                    proto = f.SequenceEqual("udp"u8) ? "udp" : f.SequenceEqual("sctp"u8) ? "sctp" : f.SequenceEqual("tcp"u8) ? "tcp" : Encoding.ASCII.GetString(f);
                    continue;
                default:
                    break;
            }

            var eq = f.IndexOf((byte)'=');
            if (eq <= 0)
            {
                continue;
            }

            var k = f[..eq];
            var v = f[(eq + 1)..];
            if (k.SequenceEqual("src"u8))
            {
                if (src0 is null)
                {
                    src0 = Encoding.ASCII.GetString(v);
                }
                else
                {
                    src1 ??= Encoding.ASCII.GetString(v);
                }
            }
            else if (k.SequenceEqual("dst"u8))
            {
                dst0 ??= Encoding.ASCII.GetString(v);
            }
            else if (k.SequenceEqual("sport"u8) && Port(v) is { } sp)
            {
                if (sport0 < 0)
                {
                    sport0 = sp;
                }
                else if (sport1 < 0)
                {
                    sport1 = sp;
                }
            }
            else if (k.SequenceEqual("dport"u8) && dport0 < 0 && Port(v) is { } dp)
            {
                dport0 = dp;
            }
        }

        return field >= 6 && proto is not null && src0 is not null && src1 is not null && dst0 is not null && sport0 >= 0 && sport1 >= 0 && dport0 >= 0
            ? new ConntrackEntry(proto, src0, sport0, dst0, dport0, src1, sport1)
            : null;
    }

    private static int? Port(ReadOnlySpan<byte> v) =>
        Utf8Parser.TryParse(v, out int n, out var used) && used == v.Length && n >= 0 ? n : null;
}
