using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Checks;

/// <summary>
/// A check that runs on its own interval with a hard timeout: a run that does not finish in time is cancelled and
/// its checks become "unknown" with the reason; the next run starts on schedule. A hung peer never hangs the agent.
/// Every timed check of every agent is one of these. A peer that is down (<see cref="PeerUnavailableException"/>)
/// is one WRN line for the whole agent (<see cref="PeerAlerts"/>), never a stack trace; any other exception is a bug,
/// logged at ERR with its trace.
/// </summary>
public abstract partial class PeriodicCheck(AgentState state, TimeProvider time, ILogger logger) : BackgroundService
{
    protected AgentState State { get; } = state;

    protected TimeProvider Time { get; } = time;

    /// <summary>The check names this one writes (used to mark them unknown when a run fails).</summary>
    protected abstract IReadOnlyList<string> Names { get; }

    /// <summary>The check names this one writes, for a one-shot run that picks some (`check --only`).</summary>
    public IReadOnlyList<string> CheckNames => Names;

    protected abstract TimeSpan Interval { get; }

    protected abstract TimeSpan Timeout { get; }

    protected abstract Task RunOnceAsync(CancellationToken ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Synchronously, while the host starts this service: what combines checks (Node conditions) knows they will answer.
        State.Expect(Names);
        using var timer = new PeriodicTimer(Interval, Time);
        do
        {
            await RunGuardedAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One run with the timeout: what the daemon does every interval, and what `check` does once.</summary>
    public async Task RunGuardedAsync(CancellationToken stoppingToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        cts.CancelAfter(Timeout);
        var sw = Stopwatch.StartNew();
        try
        {
            await RunOnceAsync(cts.Token).WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            SetAll(CheckState.Unknown, $"did not finish within {Timeout.TotalSeconds:0.#}s", sw.Elapsed, quiet: false);
        }
        catch (PeerUnavailableException ex) when (!stoppingToken.IsCancellationRequested)
        {
            // Expected: the peer is down or answers wrong. Only the first check to meet it says so at WRN.
            SetAll(CheckState.Unknown, ex.Message, sw.Elapsed, quiet: !State.Peers.Raise(ex.Peer, ex.Message));
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            Log.CheckCrashed(logger, GetType().Name, ex);
            SetAll(CheckState.Unknown, $"{ex.GetType().Name}: {ex.Message}", sw.Elapsed, quiet: false);
        }
    }

    private void SetAll(CheckState state, string message, TimeSpan latency, bool quiet)
    {
        foreach (var name in Names)
        {
            State.SetCheck(name, state, message, latency, quiet: quiet);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1301, LogLevel.Error, "check {Check} failed unexpectedly (a bug: please report it with this trace)")]
        public static partial void CheckCrashed(ILogger logger, string check, Exception ex);
    }
}
