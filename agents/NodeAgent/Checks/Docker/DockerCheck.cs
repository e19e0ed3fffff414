using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Systemd;

namespace Toolforge.Agents.NodeAgent.Checks.Docker;

/// <summary>How Docker answered.</summary>
public enum EngineCondition
{
    Healthy,

    /// <summary>Nothing listens (socket missing, connection refused).</summary>
    Down,

    /// <summary>Something accepts connections but /_ping or the container listing does not answer in time.</summary>
    Hung,
}

/// <summary>
/// Docker: /_ping and a container listing through the Engine API, each with its own short timeout, so a daemon that
/// answers ping but blocks on listings is "hung", distinct from "down" (docker.engine); /info warnings and the counts of
/// running/exited/dead containers go with it; the docker.service unit over D-Bus (docker.unit).
/// </summary>
internal sealed class DockerCheck : PeriodicCheck
{
    public const string Engine = "docker.engine";
    public const string Unit = "docker.unit";

    private readonly DockerOptions _o;
    private readonly SystemdClient? _systemd;

    public DockerCheck(IOptions<DockerOptions> options, AgentState state, TimeProvider time, ILogger<DockerCheck> logger, SystemdClient? systemd = null)
        : base(state, time, logger)
    {
        _o = options.Value;
        _systemd = systemd;
    }

    protected override IReadOnlyList<string> Names => _systemd is null ? [Engine] : [Engine, Unit];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => _o.PingTimeout + _o.ListTimeout + _o.ListTimeout + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var engine = ProbeAsync(ct);
        if (_systemd is not null)
        {
            var sw = Stopwatch.StartNew();
            try
            {
                var (state, message) = UnitJudge.Judge(await _systemd.GetUnitAsync(_o.Unit, ct).ConfigureAwait(false));
                State.SetCheck(Unit, state, message, sw.Elapsed);
            }
            catch (SystemdException ex)
            {
                State.SetCheck(Unit, CheckState.Unknown, ex.Message, sw.Elapsed);
            }
        }

        var r = await engine.ConfigureAwait(false);
        var peer = PeerName(_o.Endpoint);
        var quiet = false;
        if (r.Condition == EngineCondition.Healthy)
        {
            State.Peers.Clear(peer);
        }
        else
        {
            quiet = !State.Peers.Raise(peer, r.Message);
        }

        State.SetCheck(Engine, r.Condition == EngineCondition.Healthy ? CheckState.Ok : CheckState.Failing,
            r.Message, r.Latency,
            new Dictionary<string, string> { ["condition"] = r.Condition.ToString().ToLowerInvariant(), ["warnings"] = string.Join(" | ", r.Warnings) },
            r.Counts, quiet);
    }

    /// <summary>How Docker at an endpoint is known to <see cref="PeerAlerts"/> (shared with the tenant audit).</summary>
    public static string PeerName(string endpoint) => $"Docker at {endpoint}";

    public sealed record Probe(EngineCondition Condition, string Message, TimeSpan Latency, IReadOnlyList<string> Warnings, IReadOnlyDictionary<string, double> Counts);

    /// <summary>Ping, then list, then info, each with its own deadline; classifies what failed.</summary>
    public async Task<Probe> ProbeAsync(CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        using var client = new DockerEngine(_o.Endpoint);
        var stage = "/_ping";
        try
        {
            await client.PingAsync(_o.PingTimeout, ct).ConfigureAwait(false);
            stage = "the container listing";
            var containers = await client.ListContainersAsync(all: true, label: null, _o.ListTimeout, ct).ConfigureAwait(false);
            stage = "/info";
            var info = await client.InfoAsync(_o.ListTimeout, ct).ConfigureAwait(false);
            var counts = new Dictionary<string, double>
            {
                ["running"] = containers.Count(c => c.State == "running"),
                ["exited"] = containers.Count(c => c.State == "exited"),
                ["dead"] = containers.Count(c => c.State == "dead"),
                ["total"] = containers.Count,
            };
            var warnings = (IReadOnlyList<string>?)info.Warnings?.ToList() ?? [];
            return new Probe(EngineCondition.Healthy,
                $"Docker {info.ServerVersion}: {counts["running"]} running, {counts["exited"]} exited, {counts["dead"]} dead" + (warnings.Count > 0 ? $"; {warnings.Count} warning(s)" : string.Empty),
                sw.Elapsed, warnings, counts);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            if (stage == "/_ping" && await PeerErrors.DownAfterTimeoutAsync(_o.Endpoint, "Docker", "dockerd", ct).ConfigureAwait(false) is { } down)
            {
                return new Probe(EngineCondition.Down, "down: " + down, sw.Elapsed, [], new Dictionary<string, double>());
            }

            var limit = stage == "/_ping" ? _o.PingTimeout : _o.ListTimeout;
            return new Probe(EngineCondition.Hung, $"hung: {_o.Endpoint} accepted the connection but {stage} did not answer within {limit.TotalSeconds:0.#}s",
                sw.Elapsed, [], new Dictionary<string, double>());
        }
        catch (Exception ex) when (ex is HttpRequestException or SocketException or IOException or DockerApiException or System.Text.Json.JsonException)
        {
            var (down, message) = PeerErrors.Describe(ex, "Docker", "dockerd", _o.Endpoint);
            return new Probe(down ? EngineCondition.Down : EngineCondition.Hung,
                $"{(down ? "down" : $"broken ({stage})")}: {message}", sw.Elapsed, [], new Dictionary<string, double>());
        }
    }
}
