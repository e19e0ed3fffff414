using System.Threading.Channels;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// Build logs: every line goes to the database and only then to the followers of that build, so memory holds no
/// log, only a sequence number and the open followers per running build; the sequence moves only past lines whose
/// write committed. A build keeps at most
/// <see cref="ReportLimits.MaxLogLinesPerBuild"/> lines and <see cref="MaxBytesPerBuild"/> bytes; what is beyond is
/// counted (Build.log_lines_dropped), not kept.
/// </summary>
public sealed partial class BuildLogs
{
    public const long MaxBytesPerBuild = 64L * 1024 * 1024;
    private const int FollowerQueue = 100_000;

    private readonly object _lock = new();
    private readonly Dictionary<long, Live> _live = [];
    private readonly StoreWriter _writer;
    private readonly IStoreEngine _store;
    private readonly ILogger<BuildLogs> _logger;

    public BuildLogs(StoreWriter writer, IStoreEngine store, ILogger<BuildLogs> logger)
    {
        _writer = writer;
        _store = store;
        _logger = logger;
    }

    private sealed class Live
    {
        public long Seq;
        public long Bytes;
        public long Dropped;
        public bool Finished;

        /// <summary>Another instance stored lines since Seq/Bytes were last read (and no follower here needed them).</summary>
        public bool Stale;
        public List<Channel<BuildLogLine>> Followers { get; } = [];
    }

    /// <summary>A build that may still get lines (new, or unfinished when the coordinator started).</summary>
    public void Track(long id, bool stored = false)
    {
        var (seq, bytes) = stored ? _store.BuildLogSize(id) : (0, 0);
        lock (_lock)
        {
            _live[id] = new Live { Seq = seq, Bytes = bytes };
        }
    }

    /// <summary>
    /// Lines to store for build <paramref name="id"/>: after what the build has (or, with <paramref name="firstLine"/>
    /// from the builder, as lines firstLine, firstLine+1, …: lines already stored are not stored again, so a batch
    /// sent twice is kept once). Changes nothing here: the caller writes <see cref="LogBatch.Rows"/> and, once that
    /// committed, hands the batch to <see cref="Committed"/>; a batch whose write failed is simply dropped, and the
    /// same lines sent again are planned again in full.
    /// </summary>
    internal async Task<LogBatch> PlanAsync(long id, IReadOnlyList<string> lines, long firstLine = 0)
    {
        bool stale;
        lock (_lock)
        {
            stale = _live.TryGetValue(id, out var l) && l.Stale;
        }

        if (stale)
        {
            // Lines came through other instances: count from what the store holds (sequence and byte limit).
            var (storedSeq, storedBytes) = await Task.Run(() => _store.BuildLogSize(id)).ConfigureAwait(false);
            lock (_lock)
            {
                if (_live.TryGetValue(id, out var l))
                {
                    l.Seq = Math.Max(l.Seq, storedSeq);
                    l.Bytes = Math.Max(l.Bytes, storedBytes);
                    l.Stale = false;
                }
            }
        }

        lock (_lock)
        {
            var live = _live.GetValueOrDefault(id);
            return LogBatch.Plan(live?.Seq ?? 0, live?.Bytes ?? 0, live?.Dropped ?? 0, lines, firstLine);
        }
    }

    /// <summary>
    /// A planned batch was committed: the build's count moves past it and its followers get its lines (only now, so
    /// a follower never sees a line the store does not hold).
    /// </summary>
    internal void Committed(long id, LogBatch batch)
    {
        lock (_lock)
        {
            if (!_live.TryGetValue(id, out var live))
            {
                _live[id] = live = new Live();
            }

            live.Seq = Math.Max(live.Seq, batch.Seq);
            live.Bytes = Math.Max(live.Bytes, batch.Bytes);
            live.Dropped = Math.Max(live.Dropped, batch.Dropped);
            if (batch.Rows.Count == 0)
            {
                return;
            }

            foreach (var f in live.Followers)
            {
                foreach (var (seq, line) in batch.Rows)
                {
                    if (!f.Writer.TryWrite(new BuildLogLine { Seq = seq, Line = line }))
                    {
                        f.Writer.TryComplete(new InvalidOperationException($"the log follower fell more than {FollowerQueue} lines behind; read the log again"));
                        break;
                    }
                }
            }
        }
    }

    /// <summary>The build ended: its followers finish after the last line, and nothing of it stays in memory.</summary>
    public void Finish(long id)
    {
        lock (_lock)
        {
            if (!_live.Remove(id, out var live))
            {
                return;
            }

            live.Finished = true;
            if (live.Dropped > 0)
            {
                Log.LogCut(_logger, id, live.Dropped);
            }

            foreach (var f in live.Followers)
            {
                f.Writer.TryComplete();
            }
        }
    }

    /// <summary>
    /// Another instance stored lines of <paramref name="id"/>: this instance's followers get them from the store and
    /// its count moves past them. Without followers here nothing is read now; the count is read once, when this
    /// instance next stores lines of that build.
    /// </summary>
    public void Refresh(long id)
    {
        while (true)
        {
            long after;
            lock (_lock)
            {
                if (!_live.TryGetValue(id, out var live))
                {
                    return;
                }

                if (live.Followers.Count == 0)
                {
                    live.Stale = true;
                    return;
                }

                after = live.Seq;
            }

            var page = _store.ReadBuildLog(id, after, 5000);
            if (page.Count == 0)
            {
                return;
            }

            lock (_lock)
            {
                if (!_live.TryGetValue(id, out var live))
                {
                    return;
                }

                foreach (var (seq, line) in page)
                {
                    if (seq <= live.Seq)
                    {
                        continue;
                    }

                    live.Seq = seq;
                    live.Bytes += System.Text.Encoding.UTF8.GetByteCount(line);
                    var row = new BuildLogLine { Seq = seq, Line = line };
                    foreach (var f in live.Followers)
                    {
                        f.Writer.TryWrite(row);
                    }
                }
            }

            if (page.Count < 5000)
            {
                return;
            }
        }
    }

    /// <summary>Whether the build is followed here (a running build this instance knows).</summary>
    public bool IsTracked(long id)
    {
        lock (_lock)
        {
            return _live.ContainsKey(id);
        }
    }

    public void Forget(IEnumerable<long> ids)
    {
        lock (_lock)
        {
            foreach (var id in ids)
            {
                _live.Remove(id);
            }
        }
    }

    /// <summary>The log from the first line; with <paramref name="follow"/> and a build still running, until it ends.</summary>
    public async IAsyncEnumerable<BuildLogLine> StreamAsync(long id, bool follow, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        Channel<BuildLogLine>? live = null;
        lock (_lock)
        {
            // Follow first, read after: a line committed meanwhile comes twice (dropped by seq), never not at all.
            if (follow && _live.TryGetValue(id, out var l) && !l.Finished)
            {
                live = Channel.CreateBounded<BuildLogLine>(new BoundedChannelOptions(FollowerQueue) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
                l.Followers.Add(live);
            }
        }

        try
        {
            long last = 0;
            await foreach (var line in ReadStoredAsync(id, ct).ConfigureAwait(false))
            {
                last = line.Seq;
                yield return line;
            }

            if (live is null)
            {
                yield break;
            }

            await foreach (var line in live.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                if (line.Seq > last)
                {
                    last = line.Seq;
                    yield return line;
                }
            }
        }
        finally
        {
            if (live is not null)
            {
                lock (_lock)
                {
                    if (_live.TryGetValue(id, out var l))
                    {
                        l.Followers.Remove(live);
                    }
                }
            }
        }
    }

    // Read in pages so a long log is never held whole.
    private async IAsyncEnumerable<BuildLogLine> ReadStoredAsync(long id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        const int Page = 2000;
        long after = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var rows = await Task.Run(() => _store.ReadBuildLog(id, after, Page), ct).ConfigureAwait(false);
            var page = rows.ConvertAll(r => new BuildLogLine { Seq = r.Seq, Line = r.Line });
            foreach (var line in page)
            {
                yield return line;
            }

            if (page.Count < Page)
            {
                yield break;
            }

            after = page[^1].Seq;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2304, LogLevel.Warning, "build {Id}: log longer than the limit; {Dropped} lines were not kept")]
        public static partial void LogCut(ILogger logger, long id, long dropped);
    }
}
