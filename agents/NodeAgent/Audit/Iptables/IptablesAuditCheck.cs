using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// Runs the NAT audit on the kernel's full state every interval: iptables-save (configurable, so the nft and
/// legacy backends both work) against the Services and EndpointSlices from the API. A finding is reported once it
/// is seen in <see cref="ConfirmRuns"/> audits in a row, so kube-proxy's own sync delay does not flap findings.
/// </summary>
internal sealed class IptablesAuditCheck : PeriodicCheck, IUsesCluster
{
    private static readonly Histogram DumpSeconds = Metrics.CreateHistogram("toolforge_iptables_save_seconds", "Time iptables-save took.");
    private static readonly Histogram AuditSeconds = Metrics.CreateHistogram("toolforge_iptables_audit_seconds", "Time the audit itself took (parse and compare).");

    private readonly IptablesOptions _o;
    private readonly ClusterView _cluster;
    private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);

    public IptablesAuditCheck(IOptions<NodeAgentOptions> options, ClusterView cluster, AgentState state, TimeProvider time, ILogger<IptablesAuditCheck> logger)
        : base(state, time, logger)
    {
        _o = options.Value.Iptables;
        _cluster = cluster;
    }

    public int ConfirmRuns { get; init; } = 2;

    protected override IReadOnlyList<string> Names => [NatAudit.Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _o.Timeout + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        if (!_cluster.Synced)
        {
            State.SetCheck(NatAudit.Check, CheckState.Unknown, $"waiting for the Kubernetes API: {_cluster.Problem ?? "not listed yet"}");
            return;
        }

        var sw = Stopwatch.StartNew();
        var text = await ProcessRunner.RunAsync(_o.Command, _o.Arguments, _o.Timeout, ct).ConfigureAwait(false);
        DumpSeconds.Observe(sw.Elapsed.TotalSeconds);
        var audit = Stopwatch.StartNew();
        IptablesDump dump;
        try
        {
            dump = IptablesDump.Parse(text);
        }
        catch (IptablesParseException ex)
        {
            State.SetCheck(NatAudit.Check, CheckState.Unknown, $"cannot read {_o.Command}'s output: {ex.Message}", sw.Elapsed);
            return;
        }

        var findings = NatAudit.Run(_cluster.Model(), dump, new NatAuditOptions(_o.ForbidNodePorts, _cluster.NodeName));
        AuditSeconds.Observe(audit.Elapsed.TotalSeconds);

        // Only findings seen in ConfirmRuns consecutive audits count.
        var keys = findings.Select(f => f.Kind + "\u0000" + f.Subject).ToHashSet(StringComparer.Ordinal);
        foreach (var k in _seen.Keys.Where(k => !keys.Contains(k)).ToList())
        {
            _seen.Remove(k);
        }

        foreach (var k in keys)
        {
            _seen[k] = _seen.GetValueOrDefault(k) + 1;
        }

        var confirmed = findings.Where(f => _seen[f.Kind + "\u0000" + f.Subject] >= ConfirmRuns).ToList();
        State.SetFindings(NatAudit.Check, confirmed);
        var state = confirmed.Any(f => f.Severity == Severity.Error) ? CheckState.Failing
            : confirmed.Count > 0 ? CheckState.Warning : CheckState.Ok;
        var summary = confirmed.Count == 0
            ? $"clean: {dump.Rules.Count} rules, {_cluster.Services.Count} services"
            : string.Join(", ", confirmed.GroupBy(f => f.Kind).Select(g => $"{g.Count()} {g.Key}"));
        State.SetCheck(NatAudit.Check, state, summary, sw.Elapsed,
            values: new Dictionary<string, double> { ["rules"] = dump.Rules.Count, ["findings"] = confirmed.Count, ["audit_ms"] = audit.Elapsed.TotalMilliseconds });
        ReturnMemory(text.Length);
    }

    /// <summary>
    /// A big node's dump (10 MB of text, 70,000 rules) is garbage as soon as the audit is done, and between audits
    /// the agent needs little: give that memory back to the system at once instead of keeping the heap at its peak
    /// until the next audit. One blocking compacting collection per audit interval, only for big dumps.
    /// </summary>
    private static void ReturnMemory(int dumpChars)
    {
        if (dumpChars >= BigDumpChars)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    private const int BigDumpChars = 1 << 20;
}
