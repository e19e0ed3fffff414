using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// The one writer to the database. Writes queue here and are committed in batches (group commit): one transaction
/// for everything that arrived while the previous batch was being written, so thousands of reports a second cost a
/// few fsyncs, and each caller's task completes only once its write is durable.
/// </summary>
public sealed partial class StoreWriter : IAsyncDisposable
{
    private const int MaxBatch = 2048;

    private readonly SqliteConnection _connection;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _worker;
    private readonly ILogger _logger;

    private sealed record Pending(Action<SqliteConnection, SqliteTransaction> Write, TaskCompletionSource Done);

    public StoreWriter(SqliteConnection connection, ILogger logger)
    {
        _connection = connection;
        _logger = logger;
        _worker = Task.Factory.StartNew(Run, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Queues a write; the task completes when it is committed (or fails with the database's error).</summary>
    public Task WriteAsync(Action<SqliteConnection, SqliteTransaction> write)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Pending(write, done)))
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
            using var tx = _connection.BeginTransaction();
            foreach (var p in batch)
            {
                p.Write(_connection, tx);
            }

            tx.Commit();
            foreach (var p in batch)
            {
                p.Done.SetResult();
            }
        }
        catch (SqliteException ex) when (batch.Count > 1)
        {
            // One bad write must not fail its neighbours: retry each on its own.
            Log.BatchFailed(_logger, batch.Count, ex.Message);
            foreach (var p in batch)
            {
                Commit([p]);
            }
        }
        catch (Exception ex) when (ex is SqliteException or InvalidOperationException or ArgumentException or FormatException)
        {
            Log.WriteFailed(_logger, ex);
            foreach (var p in batch)
            {
                p.Done.TrySetException(ex);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(2101, LogLevel.Warning, "a batch of {Count} writes failed ({Reason}); retrying them one by one")]
        public static partial void BatchFailed(ILogger logger, int count, string reason);

        [LoggerMessage(2102, LogLevel.Error, "database write failed")]
        public static partial void WriteFailed(ILogger logger, Exception ex);
    }
}
