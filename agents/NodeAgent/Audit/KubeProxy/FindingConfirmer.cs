using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// Findings of kube-proxy's rules count only once seen in <see cref="Runs"/> audits in a row: kube-proxy's own sync
/// delay (and its deleting stale chains a sync later) must not flap them. Shared by the iptables and nftables audits.
/// </summary>
internal sealed class FindingConfirmer
{
    private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);

    /// <summary>
    /// How long the one-shot `check` waits before its second audit when its first saw findings: longer than kube-proxy's
    /// default --min-sync-period (1 s), so a change kube-proxy is about to write is not reported, while `check` still
    /// answers in seconds. A clean first audit is the answer at once.
    /// </summary>
    public static readonly TimeSpan OneShotRecheck = TimeSpan.FromSeconds(2);

    public int Runs { get; set; } = 2;

    /// <summary>Audits confirmed since this agent started.</summary>
    public int Audits { get; private set; }

    public List<Finding> Confirm(IReadOnlyList<Finding> findings)
    {
        Audits++;
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

    /// <summary>
    /// One audit and its confirmed findings. The one-shot `check` cannot confirm across runs: when its audit sees
    /// findings not confirmed yet, it audits again <see cref="OneShotRecheck"/> later and reports what both saw (the
    /// daemon confirms across its intervals instead). Null when an audit returned null (it set the check's state).
    /// </summary>
    public async Task<(T Audit, List<Finding> Confirmed)?> AuditAsync<T>(Func<Task<T?>> audit, Func<T, IReadOnlyList<Finding>> findingsOf, bool oneShot,
        TimeProvider time, CancellationToken ct)
        where T : class
    {
        if (await audit().ConfigureAwait(false) is not { } first)
        {
            return null;
        }

        var confirmed = Confirm(findingsOf(first));
        if (!oneShot || confirmed.Count >= findingsOf(first).Count)
        {
            return (first, confirmed);
        }

        await Task.Delay(OneShotRecheck, time, ct).ConfigureAwait(false);
        return await audit().ConfigureAwait(false) is { } again ? (again, Confirm(findingsOf(again))) : null;
    }

    /// <summary>
    /// The check's state after an audit that saw <paramref name="seen"/> findings: as <see cref="StateOf"/>, except on
    /// the first audit since the agent started when it saw findings it cannot confirm yet: unknown, not ok. An agent
    /// restarted (an upgrade, a reboot) knows nothing of the findings it reported before; calling the check ok would
    /// resolve them at the coordinator only to report them again as new a minute later, their history cut in two.
    /// Unknown keeps them as they are stored until the next audit confirms or drops them.
    /// </summary>
    public CheckState StateAfter(IReadOnlyList<Finding> confirmed, int seen) =>
        Audits <= 1 && seen > confirmed.Count && confirmed.Count == 0 ? CheckState.Unknown : StateOf(confirmed);

    public static CheckState StateOf(IReadOnlyList<Finding> confirmed) =>
        confirmed.Any(f => f.Severity == Severity.Error) ? CheckState.Failing : confirmed.Count > 0 ? CheckState.Warning : CheckState.Ok;

    public static string Summary(IReadOnlyList<Finding> confirmed) => string.Join(", ", confirmed.GroupBy(f => f.Kind).Select(g => $"{g.Count()} {g.Key}"));

    /// <summary>The check's message: <paramref name="clean"/> when nothing is confirmed, else the confirmed findings by kind; then what is <see cref="Pending"/>.</summary>
    public static string Message(IReadOnlyList<Finding> confirmed, int seen, string clean) =>
        (confirmed.Count == 0 ? clean : Summary(confirmed)) + Pending(seen, confirmed.Count);

    /// <summary>What the check's message adds when this audit saw findings the previous one did not (not reported yet).</summary>
    public static string Pending(int seen, int confirmed) =>
        seen > confirmed ? $"; {seen - confirmed} more seen by the last audit only (not confirmed yet)" : string.Empty;

    private static string Key(Finding f) => f.Kind + "\u0000" + f.Subject;
}
