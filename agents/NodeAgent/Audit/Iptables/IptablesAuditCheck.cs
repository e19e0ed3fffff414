using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
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
    private readonly ProxyModeDetector? _mode;
    private readonly FindingConfirmer _confirm = new();
    private int _lastDumpBytes;

    public IptablesAuditCheck(IOptions<IptablesOptions> options, ClusterView cluster, AgentState state, TimeProvider time, ILogger<IptablesAuditCheck> logger,
        ProxyModeDetector? mode = null)
        : base(state, time, logger)
    {
        _o = options.Value;
        _cluster = cluster;
        _mode = mode;
    }

    public int ConfirmRuns { get => _confirm.Runs; init => _confirm.Runs = value; }

    protected override IReadOnlyList<string> Names => [NatAudit.Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => OneShot ? (_o.Timeout * 2) + FindingConfirmer.OneShotRecheck + TimeSpan.FromSeconds(10) : _o.Timeout + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        if (_mode is not null && await _mode.ModeAsync(ct).ConfigureAwait(false) is { Mode: KubeProxyMode.Nftables } nft
            && !AuditPreconditions.InUse(State, NatAudit.Check, KubeProxyMode.Iptables, nft.Mode, nft.How))
        {
            return;
        }

        if (!AuditPreconditions.ClusterReady(_cluster, State, NatAudit.Check))
        {
            return;
        }

        var sw = Stopwatch.StartNew();
        if (await _confirm.AuditAsync(() => AuditAsync(sw, ct), a => a.Findings, OneShot, Time, ct).ConfigureAwait(false) is not var (audit, confirmed))
        {
            return;
        }

        State.SetFindings(NatAudit.Check, confirmed);
        var message = FindingConfirmer.Message(confirmed, audit.Findings.Count, $"clean: {audit.Rules} rules, {_cluster.ServiceCount} services");
        State.SetCheck(NatAudit.Check, _confirm.StateAfter(confirmed, audit.Findings.Count), message, sw.Elapsed,
            values: new Dictionary<string, double> { ["rules"] = audit.Rules, ["findings"] = confirmed.Count, ["audit_ms"] = audit.AuditMs });
    }

    /// <summary>
    /// The one-shot `check`: a run with findings audits a second time <see cref="FindingConfirmer.OneShotRecheck"/>
    /// later and reports the findings both audits saw (the daemon confirms across its intervals instead).
    /// </summary>
    public bool OneShot { get; set; }

    private sealed record Result(List<Finding> Findings, int Rules, double AuditMs);

    // One dump and its audit; null when the check's state has been set already (the dump could not be read).
    private async Task<Result?> AuditAsync(Stopwatch sw, CancellationToken ct)
    {
        var started = sw.Elapsed;
        var (text, length) = await ProcessRunner.RunBytesAsync(_o.Command, _o.Arguments, _o.Timeout, _lastDumpBytes, ct).ConfigureAwait(false);
        _lastDumpBytes = length;
        DumpSeconds.Observe((sw.Elapsed - started).TotalSeconds);
        var audit = Stopwatch.StartNew();
        IptablesDump dump;
        try
        {
            dump = IptablesDump.Parse(text, length);
        }
        catch (IptablesParseException ex)
        {
            State.SetCheck(NatAudit.Check, CheckState.Unknown, $"cannot read {_o.Command}'s output: {ex.Message}", sw.Elapsed);
            return null;
        }

        var findings = NatAudit.Run(_cluster.Model(), dump, new NatAuditOptions(_o.ForbidNodePorts, _cluster.NodeName));
        AuditSeconds.Observe(audit.Elapsed.TotalSeconds);
        var auditMs = audit.Elapsed.TotalMilliseconds;
        if (_o.CheckOtherBackend && await MixedBackendsAsync(dump, ct).ConfigureAwait(false) is { } mixed)
        {
            findings.Add(mixed);
        }

        ReturnMemory(length);
        return new Result(findings, dump.Rules.Count, auditMs);
    }

    /// <summary>
    /// KUBE-* chains in the backend kube-proxy does not use (legacy next to nft, or the other way round): rules an
    /// audit of one backend never sees, and packets may meet both. Null when the other backend is clean, absent, or the
    /// command line names no save program to swap.
    /// </summary>
    private async Task<Finding?> MixedBackendsAsync(IptablesDump primary, CancellationToken ct)
    {
        if (IptablesBackends.Other(_o.Command, _o.Arguments) is not { } other)
        {
            return null;
        }

        IptablesDump otherDump;
        try
        {
            var (text, length) = await ProcessRunner.RunBytesAsync(other.Command, other.Arguments, _o.Timeout, sizeHint: 0, ct).ConfigureAwait(false);
            otherDump = IptablesDump.Parse(text, length);
        }
        catch (Exception ex) when (ex is CommandFailedException or IptablesParseException)
        {
            return null; // that backend is not installed here: nothing can be in it
        }

        var theirs = IptablesBackends.KubeChains(otherDump);
        if (theirs.Count == 0)
        {
            return null;
        }

        var ours = IptablesBackends.KubeChains(primary);
        var f = new Finding
        {
            Kind = "mixed-iptables-backends",
            Subject = $"iptables-{other.OtherBackend}",
            Severity = Severity.Error,
            Check = NatAudit.Check,
            Message = ours.Count > 0
                ? $"KUBE-* chains in both backends: iptables-{other.Backend} (which kube-proxy uses here, {ours.Count} chains) and iptables-{other.OtherBackend} ({theirs.Count}: {string.Join(", ", theirs.Take(5))}); packets meet both, the audit reads one"
                : $"KUBE-* chains only in iptables-{other.OtherBackend} ({theirs.Count}: {string.Join(", ", theirs.Take(5))}), not in iptables-{other.Backend} which this agent reads as kube-proxy's",
        };
        f.Details["backends"] = $"iptables-{other.Backend},iptables-{other.OtherBackend}";
        f.Details["other_chains"] = string.Join(",", theirs.Take(20));
        return f;
    }

    /// <summary>
    /// A big node's dump (10 MB of text, 70,000 rules in one array) is garbage as soon as the audit is done, and between audits
    /// the agent needs little: give that memory back to the system at once instead of keeping the heap at its peak
    /// until the next audit. One blocking compacting collection per audit interval, only for big dumps.
    /// </summary>
    internal static void ReturnMemory(int dumpBytes)
    {
        if (dumpBytes >= BigDumpBytes)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    private const int BigDumpBytes = 1 << 20;
}
