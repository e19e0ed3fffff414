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

    /// <summary>How long a run that timed out is given to stop after it was cancelled, before the agent goes on without it.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private Task? _running;
    private long _stuckSince;

    /// <summary>After this many intervals without the previous run stopping, the check is failing, not unknown: a check that runs nothing must not look merely unsure.</summary>
    public const int FailAfterIntervals = 3;

    /// <summary>
    /// One run with the timeout: what the daemon does every interval, and what `check` does once. A run that does not
    /// finish in time is cancelled and awaited (up to <see cref="StopGrace"/>), so it cannot race the next run and
    /// overwrite a newer result; one that still does not stop keeps the next runs from starting (each says so) until it
    /// has ended — never two runs of one check at once.
    /// </summary>
    public async Task RunGuardedAsync(CancellationToken stoppingToken)
    {
        if (_running is { IsCompleted: false })
        {
            var now = Time.GetTimestamp();
            if (_stuckSince == 0)
            {
                _stuckSince = now;
            }

            var stuckFor = Time.GetElapsedTime(_stuckSince, now);
            SetAll(stuckFor >= Interval * FailAfterIntervals ? CheckState.Failing : CheckState.Unknown,
                $"the previous run did not stop within {StopGrace.TotalSeconds:0.#}s of its timeout ({Timeout.TotalSeconds:0.#}s); not started again until it has", TimeSpan.Zero, quiet: false);
            return;
        }

        _stuckSince = 0;

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        cts.CancelAfter(Timeout);
        var sw = Stopwatch.StartNew();
        var run = RunOnceAsync(cts.Token);
        _running = run;
        try
        {
            await run.WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // Cancelled by the timeout: wait for the run to notice, so its late result cannot land after a newer one.
            await Task.WhenAny(run, Task.Delay(StopGrace, Time, stoppingToken)).ConfigureAwait(false);
            SetAll(CheckState.Unknown, $"did not finish within {Timeout.TotalSeconds:0.#}s", sw.Elapsed, quiet: false);
            ObserveLate(run);
        }
        catch (PeerUnavailableException ex) when (!stoppingToken.IsCancellationRequested)
        {
            // Expected: the peer is down or answers wrong. Only the first check to meet it says so at WRN.
            SetAll(CheckState.Unknown, ex.Message, sw.Elapsed, quiet: !State.Peers.Raise(ex.Peer, ex.Message));
        }
        catch (Exception ex) when (stoppingToken.IsCancellationRequested && ex is not OperationCanceledException and not OutOfMemoryException)
        {
            // The agent is stopping while this run failed (a peer's connection refused as the process winds down, a
            // socket closed under it): nothing to report any more, and not a failure of the service — it must not make
            // the agent exit 1. Said at Debug, for whoever looks at a stop.
            Log.EndedAtStop(logger, GetType().Name, ex.GetType().Name, ex.Message);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            Log.CheckCrashed(logger, GetType().Name, ex);
            SetAll(CheckState.Unknown, $"{ex.GetType().Name}: {ex.Message}", sw.Elapsed, quiet: false);
        }
    }

    // A cancelled run ends in OperationCanceledException (expected); anything else it ends with is still a bug to log.
    private void ObserveLate(Task run) =>
        _ = run.ContinueWith(
            t =>
            {
                if (t.Exception?.GetBaseException() is { } ex and not OperationCanceledException and not PeerUnavailableException)
                {
                    Log.CheckCrashed(logger, GetType().Name, ex);
                }
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private void SetAll(CheckState state, string message, TimeSpan latency, bool quiet)
    {
        foreach (var name in Names)
        {
            State.SetCheck(name, state, message, latency, quiet: quiet);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1302, LogLevel.Debug, "check {Check}: a run ended with {Type} while the agent stopped: {Message}")]
        public static partial void EndedAtStop(ILogger logger, string check, string type, string message);

        [LoggerMessage(1301, LogLevel.Error, "check {Check} failed unexpectedly (a bug: please report it with this trace)")]
        public static partial void CheckCrashed(ILogger logger, string check, Exception ex);
    }
}
