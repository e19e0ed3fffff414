using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Checks.Kubelet;

/// <summary>
/// kubelet: its unit over D-Bus (kubelet.unit), restarts in a window (kubelet.flapping), GET /healthz
/// (kubelet.healthz) and the Node's Ready condition and unschedulable flag from the API (kubelet.node-ready).
/// </summary>
internal sealed class KubeletCheck : PeriodicCheck, IUsesCluster
{
    private readonly SystemdClient _systemd;
    private readonly IHttpClientFactory _http;
    private readonly ClusterView? _cluster;
    private readonly KubeletOptions _o;
    private readonly FlapTracker _flaps;

    public KubeletCheck(SystemdClient systemd, IHttpClientFactory http, IOptions<KubeletOptions> options, AgentState state,
        TimeProvider time, ILogger<KubeletCheck> logger, ClusterView? cluster = null)
        : base(state, time, logger)
    {
        _systemd = systemd;
        _http = http;
        _cluster = cluster;
        _o = options.Value;
        _flaps = new FlapTracker(_o.FlapWindow);
    }

    public const string Unit = "kubelet.unit";
    public const string Flapping = "kubelet.flapping";
    public const string Healthz = "kubelet.healthz";
    public const string NodeReady = "kubelet.node-ready";

    protected override IReadOnlyList<string> Names => _cluster is null ? [Unit, Flapping, Healthz] : [Unit, Flapping, Healthz, NodeReady];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _o.Timeout * 3;

    /// <summary>Where systemd looks for unit files: with no D-Bus to ask, whether kubelet.service exists at all.</summary>
    private static readonly string[] UnitDirectories = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        // A host with no kubelet unit that the cluster (read, and current) does not know as a node is not a worker:
        // the kubelet checks do not apply there (the demo host, a builder, the syslog host). A worker whose kubelet
        // unit vanished is failing; with no view of the cluster nothing is assumed.
        var (unit, unitProblem) = await UnitAsync(ct).ConfigureAwait(false);
        var noUnit = unit is { LoadState: "not-found" } || (unit is null && !UnitDirectories.Any(d => File.Exists(Path.Combine(d, _o.Unit))));
        if (noUnit && _cluster is { Synced: false, NotANode: false })
        {
            // Just started, the view perhaps not read yet: its first answer (bounded) says whether this is a node at all,
            // instead of a first run that probes a kubelet a builder never had. Once settled this returns at once.
            await _cluster.WaitSettledAsync(_o.Timeout, ct).ConfigureAwait(false);
        }

        if (noUnit && _cluster is { NotANode: true } or { Synced: true, Node: null })
        {
            var why = $"not applicable on this host (no {_o.Unit})";
            foreach (var name in new[] { Unit, Flapping, Healthz })
            {
                State.SetCheck(name, CheckState.Unknown, why, details: CheckDetails.NotApplicable, quiet: true);
            }

            if (_cluster is not null)
            {
                State.SetCheck(NodeReady, CheckState.Unknown, $"not applicable on this host (no {_o.Unit}, no Node named {_cluster.NodeName})", details: CheckDetails.NotApplicable, quiet: true);
            }

            return;
        }

        if (unit is not null)
        {
            JudgeUnit(unit);
        }
        else
        {
            State.SetCheck(Unit, CheckState.Unknown, unitProblem!, _unitLatency);
        }

        await HealthzAsync(ct).ConfigureAwait(false);
        NodeFromApi();
    }

    /// <summary>The unit as systemd has it, or null and why when D-Bus cannot tell.</summary>
    private async Task<(UnitStatus? Unit, string? Problem)> UnitAsync(CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            return (await _systemd.GetUnitAsync(_o.Unit, ct).ConfigureAwait(false), null);
        }
        catch (SystemdException ex)
        {
            return (null, ex.Message);
        }
        finally
        {
            _unitLatency = sw.Elapsed;
        }
    }

    private TimeSpan _unitLatency;

    private void JudgeUnit(UnitStatus u)
    {
        var (state, message) = UnitJudge.Judge(u);
        State.SetCheck(Unit, state, message, _unitLatency,
            new Dictionary<string, string> { ["active_state"] = u.ActiveState, ["sub_state"] = u.SubState, ["load_state"] = u.LoadState },
            new Dictionary<string, double> { ["n_restarts"] = u.NRestarts });
        var recent = _flaps.Observe(Time.GetUtcNow(), u.NRestarts);
        State.SetCheck(Flapping, recent >= _o.FlapRestarts ? CheckState.Failing : CheckState.Ok,
            $"{recent} restart(s) in the last {_o.FlapWindow.TotalMinutes:0} min (flapping at {_o.FlapRestarts})",
            values: new Dictionary<string, double> { ["restarts_in_window"] = recent });
    }

    private async Task HealthzAsync(CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_o.Timeout);
        try
        {
            using var client = _http.CreateClient("kubelet");
            using var response = await client.GetAsync(_o.HealthzUrl, cts.Token).ConfigureAwait(false);
            var body = (await response.Content.ReadAsStringAsync(cts.Token).ConfigureAwait(false)).Trim();
            var ok = response.IsSuccessStatusCode && body == "ok";
            State.SetCheck(Healthz, ok ? CheckState.Ok : CheckState.Failing,
                ok ? $"ok in {sw.Elapsed.TotalMilliseconds:0} ms" : $"HTTP {(int)response.StatusCode}: {Cut(body)}", sw.Elapsed);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            State.SetCheck(Healthz, CheckState.Failing, $"{_o.HealthzUrl} did not answer within {_o.Timeout.TotalSeconds:0.#}s", sw.Elapsed);
        }
        catch (HttpRequestException ex)
        {
            State.SetCheck(Healthz, CheckState.Failing, $"{_o.HealthzUrl}: {ex.GetBaseException().Message}", sw.Elapsed);
        }
    }

    private void NodeFromApi()
    {
        if (_cluster is null)
        {
            return;
        }

        if (!_cluster.Synced)
        {
            State.SetCheck(NodeReady, CheckState.Unknown, _cluster.Problem ?? "the Kubernetes API has not answered yet");
            return;
        }

        var node = _cluster.Node;
        if (node is null)
        {
            State.SetCheck(NodeReady, CheckState.Failing, $"no Node object named {_cluster.NodeName} in the API");
            return;
        }

        var ready = node.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        var details = new Dictionary<string, string>
        {
            ["reason"] = ready?.Reason ?? string.Empty,
            ["last_transition"] = ready?.LastTransitionTime?.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty,
            ["unschedulable"] = (node.Spec?.Unschedulable ?? false) ? "true" : "false",
        };
        if (ready?.Status != "True")
        {
            State.SetCheck(NodeReady, CheckState.Failing, $"Ready={ready?.Status ?? "missing"}: {ready?.Reason} {ready?.Message}".Trim(), details: details);
        }
        else if (node.Spec?.Unschedulable == true)
        {
            State.SetCheck(NodeReady, CheckState.Warning, "Ready, but cordoned (spec.unschedulable)", details: details);
        }
        else
        {
            State.SetCheck(NodeReady, CheckState.Ok, $"Ready since {ready.LastTransitionTime?.UtcDateTime:yyyy-MM-dd HH:mm}Z", details: details);
        }
    }

    private static string Cut(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
