namespace Toolforge.Agents.TestSupport;

/// <summary>
/// ../shared/reference-data/kube-proxy-nftables: kube-proxy's own nftables rulesets, listed by a real kernel, and the
/// Services behind them (services.txt, 19 columns), turned into what `kubectl get svc,endpointslices -A -o json` prints.
/// </summary>
public static class NftReferenceData
{
    public static string Dir => Run.ReferenceData("kube-proxy-nftables", "the reference kube-proxy nftables rulesets");

    public static readonly string[] Fixtures = ["overall-rules", "sync-repeated-initial", "sync-repeated-stale-chains", "bad-ips", "overall-rules-early", "nodeport-ipv6"];

    public const string Node = "test-node";

    public static string Kernel(string fixture) => File.ReadAllText(Path.Combine(Dir, fixture + ".kernel.json"));

    private static string[] List(string cell) => cell == "-" ? [] : cell.Split(',');

    private static List<ServiceRow> Rows(string fixture) => File.ReadAllLines(Path.Combine(Dir, fixture + ".services.txt"))
        .Where(l => l.Length > 0 && l[0] != '#')
        .Select(l => l.Split('\t'))
        .Select(c => new ServiceRow(c[0], c[1], c[2], c[3] == "-" ? string.Empty : c[3], int.Parse(c[4], System.Globalization.CultureInfo.InvariantCulture), c[5],
            c[6] == "-" ? 0 : int.Parse(c[6], System.Globalization.CultureInfo.InvariantCulture), List(c[7]), List(c[8]), List(c[9]), c[10], c[11], List(c[13]),
            c.Length > 17 ? List(c[17]) : [], c.Length > 18 ? c[18] : "IPv4"))
        .ToList();

    public static string KubectlJson(string fixture) => KubectlList.Json(Rows(fixture));

    public static string KubectlJson(string fixture, Func<string, bool> keepService) => KubectlList.Json(Rows(fixture).Where(r => keepService(r.Service)));
}
