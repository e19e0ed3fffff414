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

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// The nftables-mode audit on the kernel's state every interval (`nft -j list table ip kube-proxy`, and ip6 when it
/// exists) against the Services and EndpointSlices. Findings count once seen in <see cref="ConfirmRuns"/> audits in a
/// row: kube-proxy deletes a stale chain only in a later sync, and its own sync delay must not flap findings.
/// </summary>
internal sealed class NftablesAuditCheck : PeriodicCheck, IUsesCluster
{
    private static readonly Histogram ListSeconds = Metrics.CreateHistogram("toolforge_nft_list_seconds", "Time nft -j list table took.");
    private static readonly Histogram AuditSeconds = Metrics.CreateHistogram("toolforge_nft_audit_seconds", "Time the nftables audit itself took (parse and compare).");

    private readonly NftablesOptions _o;
    private readonly ClusterView _cluster;
    private readonly ProxyModeDetector _mode;
    private readonly FindingConfirmer _confirm = new();

    public NftablesAuditCheck(IOptions<NftablesOptions> options, ClusterView cluster, ProxyModeDetector mode, AgentState state, TimeProvider time, ILogger<NftablesAuditCheck> logger)
        : base(state, time, logger)
    {
        _o = options.Value;
        _cluster = cluster;
        _mode = mode;
    }

    public int ConfirmRuns { get => _confirm.Runs; init => _confirm.Runs = value; }

    protected override IReadOnlyList<string> Names => [NftAudit.Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => OneShot ? (_o.Timeout * 4) + FindingConfirmer.OneShotRecheck + TimeSpan.FromSeconds(10) : (_o.Timeout * 2) + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var (mode, how) = await _mode.ModeAsync(ct).ConfigureAwait(false);
        if (!AuditPreconditions.InUse(State, NftAudit.Check, KubeProxyMode.Nftables, mode, how) || !AuditPreconditions.ClusterReady(_cluster, State, NftAudit.Check))
        {
            return;
        }

        var sw = Stopwatch.StartNew();
        if (await _confirm.AuditAsync(() => AuditAsync(sw, how, ct), a => a.Findings, OneShot, Time, ct).ConfigureAwait(false) is not var (audit, confirmed))
        {
            return;
        }

        var rules = audit.Rules;
        State.SetFindings(NftAudit.Check, confirmed);
        State.SetCheck(NftAudit.Check, _confirm.StateAfter(confirmed, audit.Findings.Count),
            FindingConfirmer.Message(confirmed, audit.Findings.Count, $"clean: {rules.RuleCount} rules, {rules.ElementCount} elements, {_cluster.ServiceCount} services"),
            sw.Elapsed, values: new Dictionary<string, double> { ["rules"] = rules.RuleCount, ["elements"] = rules.ElementCount, ["findings"] = confirmed.Count, ["audit_ms"] = audit.AuditMs });
    }

    /// <summary>
    /// The one-shot `check`: a run with findings audits a second time <see cref="FindingConfirmer.OneShotRecheck"/>
    /// later and reports the findings both audits saw (the daemon confirms across its intervals instead).
    /// </summary>
    public bool OneShot { get; set; }

    private sealed record Result(List<Finding> Findings, NftRuleset Rules, double AuditMs);

    // One listing and its audit; null when the check's state has been set already (no table, or unreadable output).
    private async Task<Result?> AuditAsync(Stopwatch sw, string how, CancellationToken ct)
    {
        var started = sw.Elapsed;
        List<string> documents;
        try
        {
            documents = [await ProcessRunner.RunAsync(_o.Command, _o.Arguments, _o.Timeout, ct).ConfigureAwait(false)];
        }
        catch (CommandFailedException ex) when (ex.Stderr.Contains("No such file or directory", StringComparison.Ordinal))
        {
            State.SetCheck(NftAudit.Check, CheckState.Failing, $"kube-proxy runs in nftables mode ({how}) but there is no table ip kube-proxy: {ex.Message}", sw.Elapsed);
            return null;
        }

        if (_o.Ipv6Arguments.Count > 0)
        {
            try
            {
                documents.Add(await ProcessRunner.RunAsync(_o.Command, _o.Ipv6Arguments, _o.Timeout, ct).ConfigureAwait(false));
            }
            catch (CommandFailedException ex) when (ex.Stderr.Contains("No such file or directory", StringComparison.Ordinal))
            {
                // no ip6 table: an IPv4-only cluster
            }
        }

        ListSeconds.Observe((sw.Elapsed - started).TotalSeconds);
        var audit = Stopwatch.StartNew();
        NftRuleset rules;
        try
        {
            rules = NftRuleset.Parse([.. documents]);
        }
        catch (InvalidDataException ex)
        {
            State.SetCheck(NftAudit.Check, CheckState.Unknown, $"cannot read {_o.Command}'s output: {ex.Message}", sw.Elapsed);
            return null;
        }

        var findings = NftAudit.Run(_cluster.Model(), rules, new NftAuditOptions(_o.ForbidNodePorts, _cluster.NodeName));
        AuditSeconds.Observe(audit.Elapsed.TotalSeconds);
        return new Result(findings, rules, audit.Elapsed.TotalMilliseconds);
    }
}
