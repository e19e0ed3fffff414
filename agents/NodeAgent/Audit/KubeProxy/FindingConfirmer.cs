using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// Findings of kube-proxy's rules count only once seen in <see cref="Runs"/> audits in a row: kube-proxy's own sync
/// delay (and its deleting stale chains a sync later) must not flap them. Shared by the iptables and nftables audits.
/// </summary>
internal sealed class FindingConfirmer
{
    private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);

    public int Runs { get; set; } = 2;

    public List<Finding> Confirm(IReadOnlyList<Finding> findings)
    {
        var keys = findings.Select(Key).ToHashSet(StringComparer.Ordinal);
        foreach (var k in _seen.Keys.Where(k => !keys.Contains(k)).ToList())
        {
            _seen.Remove(k);
        }

        foreach (var k in keys)
        {
            _seen[k] = _seen.GetValueOrDefault(k) + 1;
        }

        return findings.Where(f => _seen[Key(f)] >= Runs).ToList();
    }

    public static CheckState StateOf(IReadOnlyList<Finding> confirmed) =>
        confirmed.Any(f => f.Severity == Severity.Error) ? CheckState.Failing : confirmed.Count > 0 ? CheckState.Warning : CheckState.Ok;

    public static string Summary(IReadOnlyList<Finding> confirmed) => string.Join(", ", confirmed.GroupBy(f => f.Kind).Select(g => $"{g.Count()} {g.Key}"));

    private static string Key(Finding f) => f.Kind + "\u0000" + f.Subject;
}
