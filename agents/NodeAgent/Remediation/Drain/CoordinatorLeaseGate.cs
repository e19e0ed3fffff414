using System.Globalization;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// The coordinator's per-pool lease as the drain's gate: before every write the lease is taken or renewed
/// (<c>AgentService.RemediationLease</c>, the step named), and the write acts only while the lease holds:
/// <list type="bullet">
/// <item>refused (the pool is full, too soon, outside its windows, no pool): the step does not act, the reason said;</item>
/// <item>lost (the token expired and was taken over, or given back): the token is dropped and the step does not act;
/// the next step asks for a new lease;</item>
/// <item>the coordinator unreachable: a lease already held is used until it runs out on this agent's own clock —
/// measured from before the request that granted it, less a margin that covers one API write — which is always
/// before the coordinator lets anyone else take it; without one the step waits. Never for the cordon, the reboot and
/// the hard reset (<see cref="IRemediationGate.AnswerRequired"/>): they wait for an answer (the Alertmanager gate is
/// the coordinator's).</item>
/// </list>
/// No coordinator configured: every step is refused (pacing is the coordinator's; nothing remediates unpaced). The
/// token is kept in <c>StateDirectory/node-agent.remediation-lease</c>, so an agent back from a reboot renews it.
/// </summary>
public sealed partial class CoordinatorLeaseGate : IRemediationGate, IDisposable
{
    private readonly CoordinatorConnection _connection;
    private readonly string _file;
    private readonly TimeSpan _margin;
    private readonly TimeProvider _time;
    private readonly ILogger<CoordinatorLeaseGate> _logger;
    private readonly SemaphoreSlim _one = new(1, 1);
    private readonly string _endedFile;
    private Held? _held;
    private bool _loaded;
    private string? _ended;

    public CoordinatorLeaseGate(CoordinatorConnection connection, IOptions<NodeOptions> node, IOptions<KubernetesOptions> kubernetes, TimeProvider time, ILogger<CoordinatorLeaseGate> logger)
    {
        _connection = connection;
        _file = Path.Combine(node.Value.StateDirectory, "node-agent.remediation-lease");
        _endedFile = Path.Combine(node.Value.StateDirectory, "node-agent.remediation-ended");
        _margin = kubernetes.Value.RequestTimeout * 2;
        _time = time;
        _logger = logger;
    }

    /// <summary>The lease held: its incident, token, and until when (this process's monotonic timestamp) it may be used.</summary>
    private sealed record Held(string Incident, ulong Token, long UsableUntil);

    public ValueTask<string?> RefusesAsync(string incident, string step, CancellationToken ct) => AskAsync(incident, step, renewOnly: false, ct);

    public ValueTask<string?> RenewAsync(string incident, string step, CancellationToken ct) => AskAsync(incident, step, renewOnly: true, ct);

    private async ValueTask<string?> AskAsync(string incident, string step, bool renewOnly, CancellationToken ct)
    {
        if (!_connection.Enabled)
        {
            return "no coordinator is configured (Coordinator:Address): remediation acts only under the coordinator's lease";
        }

        await _one.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var held = Load(incident);
            if (renewOnly && held is null)
            {
                return IRemediationGate.NothingHeld; // read under the lock: a lease given back (EndAsync) is not taken again
            }

            var asked = _time.GetTimestamp();
            RemediationLeaseResponse answer;
            try
            {
                answer = await _connection.AgentClient().RemediationLeaseAsync(
                    new RemediationLeaseRequest { Node = _connection.Node, Incident = incident, Step = step, Token = held?.Token ?? 0 },
                    deadline: _time.GetUtcNow().UtcDateTime + _connection.Options.CallTimeout, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || !ct.IsCancellationRequested)
            {
                _connection.Failed(ex.StatusCode);
                // Only silence lets a lease held go on: a refusal (the certificate revoked, the call invalid) is an answer.
                // Never for the cordon, the reboot, the hard reset: they need the coordinator's Alertmanager gate asked (fail closed).
                if (IRemediationGate.AnswerRequired.Contains(step))
                {
                    return $"the coordinator's lease: no answer ({ex.StatusCode}: {ex.Status.Detail}); the {step} step acts only on the coordinator's answer (its Alertmanager gate); waiting";
                }

                if (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && held is not null && _time.GetTimestamp() < held.UsableUntil)
                {
                    return null; // still ours: nobody may take it before it would expire at the coordinator
                }

                return $"the coordinator's lease: no answer ({ex.StatusCode}: {ex.Status.Detail}) and no lease held that is still valid; waiting";
            }

            if (answer.Granted)
            {
                var usable = answer.ValidFor.ToTimeSpan() - _margin;
                Save(new Held(incident, answer.Token, asked + (long)(Math.Max(0, usable.TotalSeconds) * _time.TimestampFrequency)));
                if (held?.Token != answer.Token)
                {
                    Log.Granted(_logger, answer.Pool, answer.Token, incident, step);
                }

                return null;
            }

            if (answer.Ended)
            {
                // An admin cancelled it: remembered (not resumed after a restart), and the lease given back at once
                // so the place frees now rather than at its expiry.
                _ended = incident;
                try
                {
                    DurableFile.Write(_endedFile, incident + "\n");
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    Log.Unreadable(_logger, _endedFile, ex.Message);
                }

                if (held is not null)
                {
                    await GiveBackAsync(held, incident, ct).ConfigureAwait(false);
                }

                Save(null);
                Log.Ended(_logger, incident, answer.Refusal);
            }
            else if (answer.Lost)
            {
                Save(null);
                Log.Lost(_logger, incident, held?.Token ?? 0, answer.Refusal);
            }

            return $"the coordinator's lease: {answer.Refusal}";
        }
        finally
        {
            _one.Release();
        }
    }

    public async ValueTask<string?> HeldIncidentAsync(CancellationToken ct)
    {
        await _one.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _ = Load(string.Empty); // reads the file at the first use
            return _held?.Incident;
        }
        finally
        {
            _one.Release();
        }
    }

    public async ValueTask ReleaseAsync(string incident, CancellationToken ct)
    {
        if (!_connection.Enabled)
        {
            return;
        }

        await _one.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Load(incident) is not { } held)
            {
                return;
            }

            await GiveBackAsync(held, incident, ct).ConfigureAwait(false);
            Save(null);
        }
        finally
        {
            _one.Release();
        }
    }

    public bool HasEnded(string incident)
    {
        if (_ended is null && File.Exists(_endedFile))
        {
            try
            {
                _ended = BoundedFile.ReadText("the ended incident", _endedFile, 256).Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Log.Unreadable(_logger, _endedFile, ex.Message);
            }
        }

        return _ended == incident;
    }

    private async Task GiveBackAsync(Held held, string incident, CancellationToken ct)
    {
        try
        {
            await _connection.AgentClient().RemediationLeaseAsync(
                new RemediationLeaseRequest { Node = _connection.Node, Incident = incident, Step = "release", Token = held.Token, Release = true },
                deadline: _time.GetUtcNow().UtcDateTime + _connection.Options.CallTimeout, cancellationToken: ct).ConfigureAwait(false);
            Log.Released(_logger, held.Token, incident);
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || !ct.IsCancellationRequested)
        {
            _connection.Failed(ex.StatusCode);
            Log.ReleaseFailed(_logger, held.Token, incident, ex.Status.Detail); // it expires at the coordinator by itself
        }
    }

    /// <summary>The lease held for <paramref name="incident"/>: in memory, or (first use after a start) from the file.</summary>
    private Held? Load(string incident)
    {
        if (!_loaded)
        {
            _loaded = true;
            try
            {
                var parts = File.Exists(_file) ? BoundedFile.ReadText("the remediation lease", _file, 256).Split(' ', 2) : [];
                if (parts.Length == 2 && ulong.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var token))
                {
                    // Usable only after a renewal: nothing is known of how long ago it was granted.
                    _held = new Held(parts[0], token, _time.GetTimestamp());
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Log.Unreadable(_logger, _file, ex.Message);
            }
        }

        return _held?.Incident == incident ? _held : null;
    }

    private void Save(Held? held)
    {
        _held = held;
        try
        {
            if (held is null)
            {
                File.Delete(_file);
            }
            else
            {
                DurableFile.Write(_file, $"{held.Incident} {held.Token.ToString(CultureInfo.InvariantCulture)}\n");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.Unreadable(_logger, _file, ex.Message); // kept in memory; after a restart the token is asked anew
        }
    }

    public void Dispose() => _one.Dispose();

    private static partial class Log
    {
        [LoggerMessage(EventIds.LeaseGranted, LogLevel.Information, "remediation: the coordinator's lease of pool {Pool} is ours (token {Token}) for incident {Incident}, step {Step}")]
        public static partial void Granted(ILogger logger, string pool, ulong token, string incident, string step);

        [LoggerMessage(EventIds.LeaseLost, LogLevel.Warning, "remediation: the coordinator's lease for incident {Incident} (token {Token}) is lost: {Why}; no step acts on it")]
        public static partial void Lost(ILogger logger, string incident, ulong token, string why);

        [LoggerMessage(EventIds.LeaseReleased, LogLevel.Information, "remediation: the coordinator's lease (token {Token}) of incident {Incident} given back")]
        public static partial void Released(ILogger logger, ulong token, string incident);

        [LoggerMessage(EventIds.LeaseReleaseFailed, LogLevel.Warning, "remediation: giving back the lease (token {Token}) of incident {Incident} failed: {Why}; it expires at the coordinator by itself")]
        public static partial void ReleaseFailed(ILogger logger, ulong token, string incident, string why);

        [LoggerMessage(EventIds.LeaseEnded, LogLevel.Warning, "remediation: incident {Incident} was ended by an admin at the coordinator: {Why}; it stops and is not resumed")]
        public static partial void Ended(ILogger logger, string incident, string why);

        [LoggerMessage(EventIds.LeaseFileUnusable, LogLevel.Warning, "remediation: {File}: {Why}")]
        public static partial void Unreadable(ILogger logger, string file, string why);
    }
}
