using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Systemd;

namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>
/// The CRI runtime (runtime.containerd): Version, Status and the listings over CRI (<see cref="CriProbe"/>), and its
/// unit over D-Bus (containerd.unit) as for docker.
/// </summary>
internal sealed class CriRuntimeCheck : PeriodicCheck
{
    private readonly CriOptions _o;
    private readonly SystemdClient? _systemd;

    public CriRuntimeCheck(IOptions<CriOptions> options, AgentState state, TimeProvider time, ILogger<CriRuntimeCheck> logger, SystemdClient? systemd = null)
        : base(state, time, logger)
    {
        _o = options.Value;
        _systemd = systemd;
    }

    public static string RuntimeCheckName(CriOptions o) => $"runtime.{o.Name}";

    public static string UnitCheckName(CriOptions o) => $"{o.Name}.unit";

    /// <summary>How this runtime is known to <see cref="PeerAlerts"/> (shared with the tenant audit).</summary>
    public static string PeerName(CriOptions o) => $"{o.Name} at {o.Endpoint}";

    protected override IReadOnlyList<string> Names => _systemd is null ? [RuntimeCheckName(_o)] : [RuntimeCheckName(_o), UnitCheckName(_o)];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => (_o.CallTimeout * 2) + (_o.ListTimeout * 2) + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var unit = UnitAsync(ct);
        using var client = new CriClient(_o.Endpoint, _o.CallTimeout);
        var r = await CriProbe.RunAsync(client, _o.Name, _o.CallTimeout, _o.ListTimeout, ct).ConfigureAwait(false);
        var quiet = false;
        if (r.Condition is CriCondition.Healthy or CriCondition.Degraded)
        {
            State.Peers.Clear(PeerName(_o));
        }
        else
        {
            quiet = !State.Peers.Raise(PeerName(_o), r.Message);
        }

        var state = r.Condition switch
        {
            CriCondition.Healthy => CheckState.Ok,
            CriCondition.Degraded => CheckState.Warning,
            _ => CheckState.Failing,
        };
        State.SetCheck(RuntimeCheckName(_o), state, r.Message, r.Latency,
            new Dictionary<string, string> { ["condition"] = r.Condition.ToString().ToLowerInvariant(), ["endpoint"] = _o.Endpoint, ["version"] = r.Version ?? string.Empty },
            r.Counts, quiet);
        await unit.ConfigureAwait(false);
    }

    private async Task UnitAsync(CancellationToken ct)
    {
        if (_systemd is null)
        {
            return;
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var (state, message) = UnitJudge.Judge(await _systemd.GetUnitAsync(_o.Unit, ct).ConfigureAwait(false));
            State.SetCheck(UnitCheckName(_o), state, message, sw.Elapsed);
        }
        catch (SystemdException ex)
        {
            State.SetCheck(UnitCheckName(_o), CheckState.Unknown, ex.Message, sw.Elapsed);
        }
    }
}
