using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Cluster;

/// <summary>
/// Which instance judges nodes for the metrics and applies retention: the one holding the lease row
/// (<c>sweeper_lease</c>), renewed every sweep with an expiry on the database's clock. It survives only while its
/// holder renews it: when the holder dies, or is cut off from the database however silently (its session may live on
/// for as long as TCP keepalive takes, about two hours, which kept the old session advisory lock), the row expires
/// after <see cref="Ttl"/> and the next instance to try takes it with a new epoch. The holder counts itself the
/// holder only until <see cref="Ttl"/> after the start of its last successful renewal (on its own monotonic clock, so
/// never past the row's expiry), and a renewal that does not answer within <see cref="RenewTimeout"/> is not waited
/// for. Retention writes carry a fence (<see cref="Fence"/>): refused unless the row still names this holder and epoch.
/// Registered only where instances share the store (PostgreSQL); with SQLite the one instance always holds it
/// (<see cref="SoleInstanceLease"/>).
/// </summary>
public sealed partial class SweeperLease(ISharedStore store, IOptions<State.StateOptions> options, TimeProvider time, ILogger<SweeperLease> logger) : ISweeperLease, IDisposable
{
    private readonly object _lock = new();
    private long _epoch;
    private long _renewedAt; // time.GetTimestamp() at the start of the last successful renewal
    private bool _renewed;
    private long _graceUntil; // time.GetTimestamp() before which a lease taken over from an expired holder is not acted on
    private bool _reported;
    private string _why = string.Empty;
    private Task? _renewal;

    /// <summary>How long the lease lives without a renewal: 3 sweep intervals, at least 3 s (a busy database or host).</summary>
    public TimeSpan Ttl { get; } = TtlFor(options.Value.SweepInterval);

    /// <summary>How long a sweep waits for a renewal (a cut-off database does not answer at all).</summary>
    public TimeSpan RenewTimeout => Ttl / 3;

    /// <summary>
    /// After taking the lease over from a holder whose lease expired (it did not give it back: cut off, frozen), this
    /// instance waits this long before it acts as the holder: the old holder stops by its own clock at the row's
    /// expiry or before, but sees so only at its next sweep, which may wait a renewal timeout. So two instances never
    /// export the node metrics or apply retention at once (measured: 0.3 s of overlap under load without it).
    /// </summary>
    public TimeSpan TakeoverGrace => options.Value.SweepInterval + RenewTimeout;

    /// <summary>The longest an instance that stopped renewing keeps the lease from the others: until the row expires.</summary>
    public static TimeSpan TtlFor(TimeSpan sweepInterval) => sweepInterval * 3 > TimeSpan.FromSeconds(3) ? sweepInterval * 3 : TimeSpan.FromSeconds(3);

    /// <summary>Whether this instance holds the lease now, by its own clock (never longer than the row says).</summary>
    public bool IsHeld
    {
        get
        {
            lock (_lock)
            {
                return _renewed && time.GetElapsedTime(_renewedAt) < Ttl && time.GetTimestamp() >= _graceUntil;
            }
        }
    }

    /// <summary>A write that only commits while this instance still holds the lease (null when it does not).</summary>
    public StoreOp? Fence
    {
        get
        {
            lock (_lock)
            {
                return IsHeld ? new LeaseFence(store.Instance, _epoch) : null;
            }
        }
    }

    /// <summary>
    /// Renews (or takes) the lease, waiting at most <see cref="RenewTimeout"/>: a renewal still running then goes on
    /// in the background and is not started again until it ends. Returns whether this instance holds the lease.
    /// </summary>
    public async Task<bool> HoldAsync(CancellationToken ct)
    {
        var renewal = _renewal ??= Task.Run(TryRenew, CancellationToken.None);
        if (await Task.WhenAny(renewal, Task.Delay(RenewTimeout, time, ct)).ConfigureAwait(false) == renewal)
        {
            _renewal = null;
        }
        else
        {
            lock (_lock)
            {
                _why = $"the database did not answer the renewal within {RenewTimeout.TotalSeconds:0.#} s";
            }
        }

        var held = IsHeld;
        Report(held);
        return held;
    }

    private void TryRenew()
    {
        var started = time.GetTimestamp();
        try
        {
            var renewed = store.RenewLease(Ttl, RenewTimeout);
            lock (_lock)
            {
                if (renewed is var (e, tookOver))
                {
                    if (tookOver)
                    {
                        _graceUntil = started + (long)(TakeoverGrace.TotalSeconds * time.TimestampFrequency);
                    }

                    _epoch = e;
                    _renewedAt = started;
                    _renewed = true;
                }
                else
                {
                    _renewed = false;
                    _why = "another instance holds it";
                }
            }
        }
        catch (StoreUnavailableException ex)
        {
            lock (_lock)
            {
                _why = ex.Message; // held (by the clock) until the row would expire anyway
            }
        }
        catch (Exception ex)
        {
            // Anything else (a missing table, a serialization failure): not renewed, said once per distinct reason;
            // this runs in a task nobody observes, so it must not end unseen.
            bool first;
            lock (_lock)
            {
                first = _why != ex.Message;
                _why = ex.Message;
            }

            if (first)
            {
                Log.RenewFailed(logger, ex);
            }
        }
    }

    private void Report(bool held)
    {
        ISweeperLease.Held.Set(held ? 1 : 0);
        if (held == _reported)
        {
            return;
        }

        _reported = held;
        if (held)
        {
            Log.Took(logger, _epoch, Ttl.TotalSeconds);
        }
        else
        {
            string why;
            lock (_lock)
            {
                why = _why.Length > 0 ? _why : "another instance holds it";
            }

            Log.Lost(logger, why);
        }
    }

    /// <summary>A clean stop gives the lease up at once (a process that dies leaves it to expire).</summary>
    public void Dispose()
    {
        if (IsHeld)
        {
            try
            {
                store.ReleaseLease();
            }
            catch (Exception ex) when (ex is StoreUnavailableException or InvalidOperationException or ObjectDisposedException)
            {
                // it expires by itself
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2961, LogLevel.Information, "this instance holds the sweeper lease (epoch {Epoch}, {Ttl} s without renewal): it judges nodes for the metrics and applies retention")]
        public static partial void Took(ILogger logger, long epoch, double ttl);

        [LoggerMessage(2963, LogLevel.Error, "renewing the sweeper lease failed unexpectedly; this instance counts itself holder only until the lease would expire")]
        public static partial void RenewFailed(ILogger logger, Exception ex);

        [LoggerMessage(2962, LogLevel.Warning, "this instance no longer holds the sweeper lease ({Reason})")]
        public static partial void Lost(ILogger logger, string reason);
    }
}
