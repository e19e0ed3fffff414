using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Audit.Conntrack;

/// <summary>
/// Reads the UDP and SCTP conntrack tables every interval and reports each flow <see cref="ConntrackAudit"/> finds
/// stale once it has stayed so for the grace period (kube-proxy's own clean-up runs first): a `stale-conntrack`
/// finding per flow, with its Service, the flow and its age. With Remediate on, exactly those entries are deleted,
/// each deletion an event.
/// </summary>
internal sealed partial class ConntrackCheck : PeriodicCheck, IUsesCluster
{
    private readonly ConntrackOptions _o;
    private readonly ClusterView _cluster;
    private readonly ILogger<ConntrackCheck> _logger;
    private readonly Dictionary<string, DateTimeOffset> _firstSeen = new(StringComparer.Ordinal);

    public ConntrackCheck(IOptions<NodeAgentOptions> options, ClusterView cluster, AgentState state, TimeProvider time, ILogger<ConntrackCheck> logger)
        : base(state, time, logger)
    {
        _o = options.Value.Conntrack;
        _cluster = cluster;
        _logger = logger;
    }

    protected override IReadOnlyList<string> Names => [ConntrackAudit.Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => (_o.Timeout * 3) + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        if (!_cluster.Synced)
        {
            State.SetCheck(ConntrackAudit.Check, CheckState.Unknown, $"waiting for the Kubernetes API: {_cluster.Problem ?? "not listed yet"}");
            return;
        }

        var entries = new List<ConntrackEntry>();
        foreach (var proto in new[] { "udp", "sctp" })
        {
            entries.AddRange(ConntrackEntry.Parse(await ProcessRunner.RunAsync(_o.Command, [.. _o.Arguments, "-L", "-o", "extended", "-p", proto], _o.Timeout, ct).ConfigureAwait(false)));
        }

        var now = Time.GetUtcNow();
        var stale = ConntrackAudit.Run(_cluster.Model(), entries, NodeAddresses());
        var keys = stale.Select(s => s.Flow.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var k in _firstSeen.Keys.Where(k => !keys.Contains(k)).ToList())
        {
            _firstSeen.Remove(k);
        }

        var findings = new List<Finding>();
        foreach (var s in stale)
        {
            var first = _firstSeen.TryGetValue(s.Flow.Key, out var at) ? at : _firstSeen[s.Flow.Key] = now;
            var age = now - first;
            if (age < _o.GracePeriod)
            {
                continue;
            }

            if (_o.Remediate && await DeleteAsync(s, ct).ConfigureAwait(false))
            {
                _firstSeen.Remove(s.Flow.Key);
                continue;
            }

            var f = new Finding
            {
                Kind = "stale-conntrack",
                Subject = $"{s.ServicePort} {s.Flow.Protocol} {s.Flow.OrigSource}:{s.Flow.OrigSourcePort.ToString(CultureInfo.InvariantCulture)}",
                Severity = Severity.Error,
                Check = ConntrackAudit.Check,
                Message = $"conntrack keeps {s.Flow} for {(int)age.TotalSeconds}s: {s.Why}",
            };
            f.Details["flow"] = s.Flow.ToString();
            f.Details["age_seconds"] = ((int)age.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            findings.Add(f);
        }

        State.SetFindings(ConntrackAudit.Check, findings);
        State.SetCheck(ConntrackAudit.Check, findings.Count > 0 ? CheckState.Failing : CheckState.Ok,
            findings.Count > 0 ? $"{findings.Count} stale UDP/SCTP conntrack entr{(findings.Count == 1 ? "y" : "ies")} to Services"
                : stale.Count > 0 ? $"clean: {entries.Count} UDP/SCTP flows; {stale.Count} wrong for less than {_o.GracePeriod.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s, left to kube-proxy so far"
                : $"clean: {entries.Count} UDP/SCTP flows",
            values: new Dictionary<string, double> { ["flows"] = entries.Count, ["stale"] = findings.Count, ["pending"] = stale.Count - findings.Count });
    }

    private List<string> NodeAddresses() =>
        _cluster.Node?.Status?.Addresses?.Where(a => a.Type is "InternalIP" or "ExternalIP").Select(a => a.Address).OfType<string>().ToList() ?? [];

    private async Task<bool> DeleteAsync(StaleFlow s, CancellationToken ct)
    {
        var f = s.Flow;
        try
        {
            await ProcessRunner.RunAsync(_o.Command, [.. _o.Arguments, "-D", "-p", f.Protocol, "--orig-src", f.OrigSource, "--orig-dst", f.OrigDestination,
                "--orig-port-src", f.OrigSourcePort.ToString(CultureInfo.InvariantCulture), "--orig-port-dst", f.OrigDestinationPort.ToString(CultureInfo.InvariantCulture),
                "--reply-src", f.ReplySource], _o.Timeout, ct).ConfigureAwait(false);
            State.AddEvent("conntrack-deleted", $"deleted the stale conntrack entry {f} of {s.ServicePort}: {s.Why}");
            return true;
        }
        catch (CommandFailedException ex)
        {
            Log.DeleteFailed(_logger, f.ToString(), ex.Message);
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(3401, LogLevel.Warning, "could not delete the stale conntrack entry {Flow}: {Reason}")]
        public static partial void DeleteFailed(ILogger logger, string flow, string reason);
    }
}
