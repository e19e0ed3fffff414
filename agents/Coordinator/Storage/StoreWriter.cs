using System.Threading.Channels;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// The one writer to the database. Writes queue here and are committed in batches (group commit): one transaction
/// for everything that arrived while the previous batch was being written, so thousands of reports a second cost a
/// few fsyncs, and each caller's task completes only once its write is durable.
/// </summary>
public sealed partial class StoreWriter : IAsyncDisposable
{
    private const int MaxBatch = 2048;

    private readonly IStoreEngine _engine;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _worker;
    private readonly ILogger _logger;

    private sealed record Pending(StoreOp Op, TaskCompletionSource Done);

    public StoreWriter(IStoreEngine engine, ILogger logger)
    {
        _engine = engine;
        _logger = logger;
        _worker = Task.Factory.StartNew(Run, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Queues a write; the task completes when it is committed (or fails with the database's error).</summary>
    public Task WriteAsync(StoreOp op)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Pending(op, done)))
        {
            done.SetException(new InvalidOperationException("the coordinator is shutting down"));
        }

        return done.Task;
    }

    private async Task Run()
    {
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var p))
            {
                batch.Add(p);
            }

            Commit(batch);
        }
    }

    private void Commit(List<Pending> batch)
    {
        try
        {
            _engine.Commit([.. batch.Select(p => p.Op)]);
            foreach (var p in batch)
            {
                p.Done.SetResult();
            }
        }
        catch (StoreUnavailableException ex)
        {
            // The database, not the writes, is the problem: every caller hears UNAVAILABLE and sends again.
            Log.Unavailable(_logger, batch.Count, ex.Message);
            foreach (var p in batch)
            {
                p.Done.TrySetException(ex);
            }
        }
        catch (StoreConflictException ex) when (batch.Count == 1)
        {
            batch[0].Done.TrySetException(ex); // expected with several instances: the caller reads again and decides again
        }
        catch (Exception ex) when (batch.Count > 1 && IsWriteError(ex))
        {
            // One bad write must not fail its neighbours: retry each on its own.
            Log.BatchFailed(_logger, batch.Count, ex.Message);
            foreach (var p in batch)
            {
                Commit([p]);
            }
        }
        catch (Exception ex) when (IsWriteError(ex))
        {
            Log.WriteFailed(_logger, ex);
            foreach (var p in batch)
            {
                p.Done.TrySetException(ex);
            }
        }
    }

    private static bool IsWriteError(Exception ex) =>
        ex is System.Data.Common.DbException or InvalidOperationException or ArgumentException or FormatException or StoreConflictException;

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(2101, LogLevel.Warning, "a batch of {Count} writes failed ({Reason}); retrying them one by one")]
        public static partial void BatchFailed(ILogger logger, int count, string reason);

        [LoggerMessage(2103, LogLevel.Warning, "the database is unavailable; {Count} writes refused ({Reason})")]
        public static partial void Unavailable(ILogger logger, int count, string reason);

        [LoggerMessage(2102, LogLevel.Error, "database write failed")]
        public static partial void WriteFailed(ILogger logger, Exception ex);
    }
}
