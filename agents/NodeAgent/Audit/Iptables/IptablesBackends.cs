namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// The two iptables backends: nf_tables (iptables-nft-save; Debian 12's iptables-save) and legacy
/// (iptables-legacy-save). Rules that went to the one kube-proxy does not use are invisible to an audit of the other.
/// </summary>
public static class IptablesBackends
{
    private static readonly Dictionary<string, (string Backend, string Other)> Programs = new(StringComparer.Ordinal)
    {
        ["iptables-save"] = ("nft", "iptables-legacy-save"),
        ["iptables-nft-save"] = ("nft", "iptables-legacy-save"),
        ["iptables-legacy-save"] = ("legacy", "iptables-nft-save"),
    };

    /// <summary>
    /// The command line that reads the other backend: <paramref name="command"/> and <paramref name="arguments"/> with the
    /// save program swapped (also inside `ip netns exec NS iptables-save`); null when neither names a save program.
    /// </summary>
    public static (string Command, List<string> Arguments, string Backend, string OtherBackend)? Other(string command, IReadOnlyList<string> arguments)
    {
        var line = new List<string> { command };
        line.AddRange(arguments);
        for (var i = 0; i < line.Count; i++)
        {
            var name = Path.GetFileName(line[i]);
            if (Programs.TryGetValue(name, out var p))
            {
                line[i] = p.Other;
                return (line[0], line.Skip(1).ToList(), p.Backend, p.Backend == "nft" ? "legacy" : "nft");
            }
        }

        return null;
    }

    /// <summary>The KUBE-* chains of a dump (any table).</summary>
    public static List<string> KubeChains(IptablesDump dump) =>
        dump.Chains.Where(c => c.StartsWith("KUBE-", StringComparison.Ordinal)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
}
