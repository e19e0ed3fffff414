using System.Globalization;

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
        foreach (var raw in text.Split('\n'))
        {
            var fields = raw.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[0] is not ("ipv4" or "ipv6"))
            {
                continue;
            }

            var proto = fields[2];
            var src = new List<string>();
            var dst = new List<string>();
            var sport = new List<int>();
            var dport = new List<int>();
            foreach (var f in fields)
            {
                var eq = f.IndexOf('=', StringComparison.Ordinal);
                if (eq < 0)
                {
                    continue;
                }

                var (k, v) = (f[..eq], f[(eq + 1)..]);
                switch (k)
                {
                    case "src":
                        src.Add(v);
                        break;
                    case "dst":
                        dst.Add(v);
                        break;
                    case "sport" when int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var sp):
                        sport.Add(sp);
                        break;
                    case "dport" when int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var dp):
                        dport.Add(dp);
                        break;
                    default:
                        break;
                }
            }

            if (src.Count >= 2 && dst.Count >= 1 && sport.Count >= 2 && dport.Count >= 1)
            {
                list.Add(new ConntrackEntry(proto, src[0], sport[0], dst[0], dport[0], src[1], sport[1]));
            }
        }

        return list;
    }
}
