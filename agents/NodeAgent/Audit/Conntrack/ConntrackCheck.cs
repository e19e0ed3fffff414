using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
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
    private bool _wasCut;

    public ConntrackCheck(IOptions<ConntrackOptions> options, ClusterView cluster, AgentState state, TimeProvider time, ILogger<ConntrackCheck> logger)
        : base(state, time, logger)
    {
        _o = options.Value;
        _cluster = cluster;
        _logger = logger;
    }

    /// <summary>
    /// How much of one `conntrack -L` listing is read (64 MiB, about 350,000 flows): a tenant decides how big the table
    /// is. A constant until NodeAgent:Conntrack has a setting for it.
    /// </summary>
    internal long MaxListingBytes { get; init; } = 64L << 20;

    /// <summary>How many stale entries one run deletes with Remediate (100); the rest are counted and left for the next run.</summary>
    internal int MaxDeletions { get; init; } = 100;

    protected override IReadOnlyList<string> Names => [ConntrackAudit.Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => (_o.Timeout * 3) + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        if (!AuditPreconditions.ClusterReady(_cluster, State, ConntrackAudit.Check))
        {
            return;
        }

        var (stale, flows, cut) = await ListStaleAsync(ct).ConfigureAwait(false);
        var (findings, deleted, deferred) = await ActAsync(stale, ct).ConfigureAwait(false);
        var pending = stale.Count - findings.Count - deleted;
        State.SetFindings(ConntrackAudit.Check, findings);
        State.SetCheck(ConntrackAudit.Check, findings.Count > 0 ? CheckState.Failing : cut.Count > 0 ? CheckState.Warning : CheckState.Ok,
            Message(flows, findings.Count, pending, deleted, deferred, cut),
            values: new Dictionary<string, double> { ["flows"] = flows, ["stale"] = findings.Count, ["pending"] = pending, ["deleted"] = deleted, ["deferred"] = deferred, ["cut"] = cut.Count });
    }

    /// <summary>
    /// Each listing (udp, sctp) judged line by line as conntrack writes it, keeping only the stale flows: a table a
    /// tenant fills with UDP flows (50 MB of text) costs one read buffer, and a listing past the bound is cut there.
    /// </summary>
    private async Task<(List<StaleFlow> Stale, int Flows, List<string> Cut)> ListStaleAsync(CancellationToken ct)
    {
        var judge = ConntrackAudit.Judge(_cluster.Model(), NodeAddresses());
        var stale = new List<StaleFlow>();
        var flows = 0;
        var cut = new List<string>();
        foreach (var proto in new[] { "udp", "sctp" })
        {
            var (bytes, truncated) = await ProcessRunner.RunLinesAsync(_o.Command, [.. _o.Arguments, "-L", "-o", "extended", "-p", proto], _o.Timeout, MaxListingBytes, line =>
            {
                if (ConntrackEntry.ParseLine(line) is { } e)
                {
                    flows++;
                    if (judge(e) is { } s)
                    {
                        stale.Add(s);
                    }
                }
            }, ct).ConfigureAwait(false);
            if (truncated)
            {
                cut.Add(proto);
                if (!_wasCut)
                {
                    Log.ListingCut(_logger, proto, bytes); // once, until a listing fits again
                }
            }
        }

        _wasCut = cut.Count > 0;
        return (stale, flows, cut);
    }

    /// <summary>
    /// The stale flows past the grace period (kube-proxy's own clean-up runs first): with Remediate, deleted (at most
    /// <see cref="MaxDeletions"/> a run, the rest deferred); each one left is a stale-conntrack finding.
    /// </summary>
    private async Task<(List<Finding> Findings, int Deleted, int Deferred)> ActAsync(List<StaleFlow> stale, CancellationToken ct)
    {
        var now = Time.GetUtcNow();
        var keys = stale.Select(s => s.Flow.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var k in _firstSeen.Keys.Where(k => !keys.Contains(k)).ToList())
        {
            _firstSeen.Remove(k);
        }

        var findings = new List<Finding>();
        var (deleted, deferred) = (0, 0);
        foreach (var s in stale)
        {
            var first = _firstSeen.TryGetValue(s.Flow.Key, out var at) ? at : _firstSeen[s.Flow.Key] = now;
            var age = now - first;
            if (age < _o.GracePeriod)
            {
                continue;
            }

            if (_o.Remediate && deleted >= MaxDeletions)
            {
                deferred++; // left for the next run: one run never spends its whole timeout on conntrack -D
            }
            else if (_o.Remediate && await DeleteAsync(s, ct).ConfigureAwait(false))
            {
                deleted++;
                _firstSeen.Remove(s.Flow.Key);
                continue;
            }

            findings.Add(ConntrackAudit.Findings.Make("stale-conntrack", Severity.Error,
                $"{s.ServicePort} {s.Flow.Protocol} {s.Flow.OrigSource}:{s.Flow.OrigSourcePort.ToString(CultureInfo.InvariantCulture)}",
                $"conntrack keeps {s.Flow} for {(int)age.TotalSeconds}s: {s.Why}",
                ("flow", s.Flow.ToString()), ("age_seconds", ((int)age.TotalSeconds).ToString(CultureInfo.InvariantCulture))));
        }

        return (findings, deleted, deferred);
    }

    private string Message(int flows, int stale, int pending, int deleted, int deferred, List<string> cut)
    {
        var message = stale > 0 ? $"{stale} stale UDP/SCTP conntrack entr{(stale == 1 ? "y" : "ies")} to Services"
            : pending > 0 ? $"clean: {flows} UDP/SCTP flows; {pending} wrong for less than {_o.GracePeriod.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s, left to kube-proxy so far"
            : $"clean: {flows} UDP/SCTP flows";
        if (deleted > 0 || deferred > 0)
        {
            message += $"; deleted {deleted}{(deferred > 0 ? $", {deferred} more left for the next run (at most {MaxDeletions} a run)" : string.Empty)}";
        }

        // A listing cut at the bound is not a clean table: what was not read was not judged.
        if (cut.Count > 0)
        {
            message += $"; the {string.Join(" and ", cut)} listing passed {(MaxListingBytes >= 1 << 20 ? $"{MaxListingBytes >> 20} MiB" : $"{MaxListingBytes} bytes")} and was read only that far";
        }

        return message;
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
        [LoggerMessage(EventIds.ConntrackDeleteFailed, LogLevel.Warning, "could not delete the stale conntrack entry {Flow}: {Reason}")]
        public static partial void DeleteFailed(ILogger logger, string flow, string reason);

        [LoggerMessage(EventIds.ConntrackListingCut, LogLevel.Warning, "the conntrack {Protocol} listing passed the bound at {Bytes} bytes: read only that far")]
        public static partial void ListingCut(ILogger logger, string protocol, long bytes);
    }
}
