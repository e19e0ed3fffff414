using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Prometheus;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Common.Syslog;
using Toolforge.Agents.LogShipper.Journal;
using Toolforge.Agents.LogShipper.Delivery.Relp;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>What a run did.</summary>
public sealed class ShipStats
{
    public long Read;
    public long Sent;
    public long Acknowledged;
    public long Filtered;
    public long RateLimited;
    public long Resent;
    public long Truncated;
    public long Reconnects;
    public string? LastError;
    public DateTimeOffset? LastDelivery;
    public long OldestWaitingMicros;
    public bool Connected;

    /// <summary>Set while a destination's TLS file (CA bundle, certificate, key) cannot be loaded: why; null otherwise.</summary>
    public volatile string? TlsProblem;

    public override string ToString() =>
        $"read {Read}, sent {Sent}, acknowledged {Acknowledged}, filtered {Filtered}, rate-limited {RateLimited}, sent again after reconnects {Resent}, truncated {Truncated}";
}

/// <summary>
/// Reads the journal from the saved cursor (on its own thread, as sd_journal wants), maps each entry to RFC 5424 and
/// sends it to the first destination that works. The journal is the buffer: at most a few thousand entries are in
/// memory whatever the receiver does. The cursor is saved only once everything up to it is acknowledged (RELP) or
/// written and flushed (TCP/TLS).
/// </summary>
public sealed partial class Shipper(ShipperOptions options, JournalOptions journalOptions, TimeProvider time, ILogger logger)
{
    private static readonly Counter ReadTotal = Metrics.CreateCounter("toolforge_shipper_entries_read_total", "Journal entries read.");
    private static readonly Counter SentTotal = Metrics.CreateCounter("toolforge_shipper_entries_sent_total", "Messages written to a receiver (resends included).");
    private static readonly Counter AckTotal = Metrics.CreateCounter("toolforge_shipper_entries_acknowledged_total", "Messages the receiver confirmed (RELP) or that were flushed (TCP/TLS).");
    private static readonly Counter BytesTotal = Metrics.CreateCounter("toolforge_shipper_bytes_sent_total", "Syslog bytes written.");
    private static readonly Counter DroppedTotal = Metrics.CreateCounter("toolforge_shipper_entries_dropped_total", "Entries not shipped, by reason.", "reason");
    private static readonly Counter ReconnectsTotal = Metrics.CreateCounter("toolforge_shipper_reconnects_total", "Connections to receivers made after a failure.");
    private static readonly Gauge LagSeconds = Metrics.CreateGauge("toolforge_shipper_lag_seconds", "Now minus the time of the oldest entry not yet delivered (0 when all is delivered).");

    private const int QueueLength = 1024;
    private const int FlushBatch = 512;

    private readonly CursorStore _cursors = new(options.StateFile);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly ShipItemPool _items = new();

    public ShipStats Stats { get; } = new();

    /// <summary>
    /// Ships until the end of the journal (follow: false; then waits for every acknowledgement) or until cancelled
    /// (follow: true). Returns false when delivery failed for longer than <paramref name="giveUpAfter"/>.
    /// </summary>
    public async Task<bool> RunAsync(bool follow, TimeSpan? giveUpAfter, CancellationToken ct)
    {
        var queue = Channel.CreateBounded<ShipItem>(new BoundedChannelOptions(QueueLength) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = Task.Factory.StartNew(() => ReadJournal(queue.Writer, follow, stop.Token), stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            return await SendLoopAsync(queue.Reader, giveUpAfter, stop.Token).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await reader.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }
    }

    // ------------------------------------------------------------------ reading

    private void ReadJournal(ChannelWriter<ShipItem> output, bool follow, CancellationToken ct)
    {
        try
        {
            using var journal = journalOptions.JournalFiles.Count > 0 ? JournalReader.OpenFiles(journalOptions.JournalFiles)
                : journalOptions.JournalDirectory.Length > 0 ? JournalReader.OpenDirectory(journalOptions.JournalDirectory)
                : JournalReader.OpenSystem();
            Position(journal);
            var filter = new EntryFilter(journalOptions);
            var limiter = new RateLimiter(journalOptions.RateLimit);
            var entry = new JournalEntry();
            Span<char> key = stackalloc char[Utf16.StackLimit];
            var limiting = journalOptions.RateLimit.Burst > 0; // the clock is read per entry only when it is needed
            var lastDropReport = time.GetUtcNow();
            while (!ct.IsCancellationRequested)
            {
                while (journal.Next())
                {
                    entry.Read(journal);
                    Interlocked.Increment(ref Stats.Read);
                    ReadTotal.Inc();
                    var ship = false;
                    if (!filter.Accepts(entry))
                    {
                        Interlocked.Increment(ref Stats.Filtered);
                    }
                    else if (limiting && !limiter.Allow(RateKey(entry, key), time.GetUtcNow()))
                    {
                        Interlocked.Increment(ref Stats.RateLimited);
                        DroppedTotal.WithLabels("rate-limit").Inc();
                    }
                    else
                    {
                        ship = true;
                    }

                    var item = _items.Rent().Start(entry[JournalField.Cursor], entry.RealtimeMicros, ship);
                    if (ship && EntryMapper.Write(entry, item, options.MaxMessageBytes) > 0)
                    {
                        Interlocked.Increment(ref Stats.Truncated);
                    }

                    // Blocks while the queue is full: the journal is the buffer.
                    while (!output.TryWrite(item))
                    {
                        output.WaitToWriteAsync(ct).AsTask().GetAwaiter().GetResult();
                    }

                    if (limiting && time.GetUtcNow() - lastDropReport >= journalOptions.RateLimit.Interval)
                    {
                        ReportDrops(limiter);
                        lastDropReport = time.GetUtcNow();
                    }
                }

                ReportDrops(limiter);
                if (!follow)
                {
                    break;
                }

                journal.Wait(TimeSpan.FromSeconds(1));
            }

            output.TryComplete();
        }
        catch (OperationCanceledException)
        {
            output.TryComplete();
        }
        catch (Exception ex) when (ex is JournalException or IOException or UnauthorizedAccessException or PlatformNotSupportedException or DllNotFoundException)
        {
            Log.JournalFailed(logger, ex.Message);
            Stats.LastError = $"cannot read the journal: {ex.Message}";
            output.TryComplete(ex);
        }
    }

    // The rate limit's key: the unit, else the identifier, else the transport, else "-".
    private static ReadOnlySpan<char> RateKey(JournalEntry e, Span<char> scratch) =>
        e.Has(JournalField.Unit) ? Utf16.Decode(e[JournalField.Unit], scratch)
        : e.Has(JournalField.Identifier) ? Utf16.Decode(e[JournalField.Identifier], scratch)
        : e.Has(JournalField.Transport) ? Utf16.Decode(e[JournalField.Transport], scratch)
        : "-";

    private void ReportDrops(RateLimiter limiter)
    {
        var dropped = limiter.TakeDropped();
        if (dropped.Count > 0)
        {
            Log.RateLimited(logger, dropped.Values.Sum(), string.Join(", ", dropped.OrderByDescending(d => d.Value).Take(10).Select(d => $"{d.Key}={d.Value}")));
        }
    }

    private void Position(JournalReader journal)
    {
        string? cursor;
        try
        {
            cursor = _cursors.Load();
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            Log.CursorUnreadable(logger, _cursors.Path, ex.Message, options.OnUnknownCursor);
            StartAt(journal, options.OnUnknownCursor);
            return;
        }

        if (cursor is null)
        {
            StartAt(journal, options.StartAt);
            return;
        }

        CursorSeek seek;
        try
        {
            seek = journal.SeekCursor(cursor);
        }
        catch (JournalException ex)
        {
            Log.CursorUnreadable(logger, _cursors.Path, ex.Message, options.OnUnknownCursor);
            StartAt(journal, options.OnUnknownCursor);
            return;
        }

        if (seek == CursorSeek.Unknown)
        {
            Log.CursorUnknown(logger, _cursors.Path, options.OnUnknownCursor);
            StartAt(journal, options.OnUnknownCursor);
        }
    }

    private static void StartAt(JournalReader journal, string where)
    {
        if (where == "tail")
        {
            journal.SeekTail();
        }
        else
        {
            journal.SeekHead();
        }
    }

    // ------------------------------------------------------------------ sending

    private async Task<bool> SendLoopAsync(ChannelReader<ShipItem> input, TimeSpan? giveUpAfter, CancellationToken ct)
    {
        var outstanding = new Queue<ShipItem>();
        var link = new Link(options.Destinations.Count);
        // One WRN when connecting starts failing (a TLS file that does not load is said by TlsMaterialFailed instead),
        // and 5001 on every connection, with the failures before it.
        var streak = new RetryStreak(RetryBounds.AtLeast(options.ReconnectMin, options.ReconnectMax), time,
            (ex, _) =>
            {
                if (ex is not TlsMaterialException)
                {
                    Log.ConnectFailed(logger, options.Destinations[link.Destination].Url, ex.Message);
                }
            },
            (_, _) => { });
        var lastProgress = Stopwatch.StartNew();
        string? committed = null;
        var saver = new CursorSaver(_cursors);
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                if (Commit(outstanding, input, ref committed))
                {
                    saver.Update(committed!);
                }

                if (saver.LastError is { } saveError)
                {
                    Stats.LastError = $"cannot save the cursor: {saveError.Message}";
                }

                if (link.InputDone && outstanding.Count == 0)
                {
                    return true;
                }

                if (link.Connection is null || link.Connection.Broken.IsCompleted)
                {
                    await DropLostAsync(link).ConfigureAwait(false);
                    if (giveUpAfter is { } limit && lastProgress.Elapsed > limit && (outstanding.Count > 0 || !link.InputDone))
                    {
                        Log.GaveUp(logger, limit.TotalSeconds, Stats.LastError ?? "?");
                        return false;
                    }

                    await ConnectAndResendAsync(link, streak, outstanding, ct).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await PumpAsync(link, input, outstanding, lastProgress, ct).ConfigureAwait(false);
                }
                catch (DeliveryException)
                {
                    // connection.Broken is set; the top of the loop reconnects and resends
                }
            }
        }
        finally
        {
            if (Commit(outstanding, input, ref committed))
            {
                saver.Update(committed!);
            }

            try
            {
                await saver.DisposeAsync().ConfigureAwait(false); // throws when the last cursor cannot be saved
            }
            finally
            {
                if (link.Connection is not null)
                {
                    await link.Connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>The destination in use (tried in order, the next one after a failure or a loss) and its connection.</summary>
    private sealed class Link(int destinations)
    {
        public IShipConnection? Connection { get; set; }

        public int Destination { get; private set; }

        /// <summary>The journal's reading ended (one-shot `ship`): set before anything that can fail after it, so a flush that fails then does not lose it.</summary>
        public bool InputDone { get; set; }

        /// <summary>Per destination, the TLS file problem of its current streak (said once).</summary>
        public TlsMaterialException?[] TlsProblems { get; } = new TlsMaterialException?[destinations];

        public void Next() => Destination = (Destination + 1) % destinations;
    }

    /// <summary>A connection that broke is said, closed, and the next destination is the one to try.</summary>
    private async Task DropLostAsync(Link link)
    {
        if (link.Connection is not { } lost)
        {
            return;
        }

        Stats.LastError = lost.Broken.Exception?.GetBaseException().Message;
        Log.ConnectionLost(logger, options.Destinations[link.Destination].Url, Stats.LastError ?? "?");
        await lost.DisposeAsync().ConfigureAwait(false);
        link.Connection = null;
        Stats.Connected = false;
        link.Next();
    }

    /// <summary>
    /// Connects to the link's destination and sends again what it has not confirmed; a failure moves to the next
    /// destination after the streak's backoff.
    /// </summary>
    private async Task ConnectAndResendAsync(Link link, RetryStreak streak, Queue<ShipItem> outstanding, CancellationToken ct)
    {
        try
        {
            link.Connection = await ConnectAsync(link.Destination, ct).ConfigureAwait(false);
            TlsMaterialLoaded(link.TlsProblems, link.Destination);
            Stats.Connected = true;
            if (streak.Failing || Stats.Reconnects > 0 || Stats.Sent > 0)
            {
                Interlocked.Increment(ref Stats.Reconnects);
                ReconnectsTotal.Inc();
            }

            Log.Connected(logger, options.Destinations[link.Destination].Url, streak.Failures);
            streak.Succeeded();
            foreach (var item in outstanding.Where(i => i.HasPayload && !i.Done))
            {
                await SendOneAsync(link.Connection, item, resend: true, ct).ConfigureAwait(false);
            }

            await link.Connection.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (DeliveryException ex)
        {
            Stats.LastError = ex.Message;
            if (ex is TlsMaterialException tls)
            {
                TlsMaterialFailed(link.TlsProblems, link.Destination, tls);
            }
            else
            {
                TlsMaterialLoaded(link.TlsProblems, link.Destination); // it was read before connecting
            }

            var wait = streak.Failed(ex);
            if (link.Connection is not null)
            {
                await link.Connection.DisposeAsync().ConfigureAwait(false);
                link.Connection = null;
            }

            link.Next();
            await streak.WaitAsync(wait, ct).ConfigureAwait(false); // a stop: the loop's first line throws, as before
        }
    }

    /// <summary>
    /// One step of sending on a live connection: waits while the window is full, else sends what the journal has (up
    /// to a batch), else waits for more or for acknowledgements. Marks the link when the input has ended.
    /// </summary>
    private async Task PumpAsync(Link link, ChannelReader<ShipItem> input, Queue<ShipItem> outstanding, Stopwatch lastProgress, CancellationToken ct)
    {
        var connection = link.Connection!;
        if (connection.Unconfirmed >= connection.Window || (connection.Unconfirmed > connection.RefillBelow && input.TryPeek(out _)))
        {
            await connection.FlushAsync(ct).ConfigureAwait(false);
            await Task.WhenAny(_wake.WaitAsync(TimeSpan.FromMilliseconds(200), ct), connection.Broken).ConfigureAwait(false);
            return;
        }

        var batch = 0;
        while (batch < FlushBatch && connection.Unconfirmed < connection.Window && input.TryRead(out var item))
        {
            outstanding.Enqueue(item);
            if (!item.HasPayload)
            {
                item.Done = true;
            }
            else
            {
                await SendOneAsync(connection, item, resend: false, ct).ConfigureAwait(false);
            }

            batch++;
        }

        if (batch > 0)
        {
            await connection.FlushAsync(ct).ConfigureAwait(false);
            lastProgress.Restart();
            return;
        }

        if (input.Completion.IsCompleted)
        {
            link.InputDone = true;
            if (input.Completion.IsFaulted)
            {
                throw new JournalReadFailedException(input.Completion.Exception!.GetBaseException());
            }
        }

        await connection.FlushAsync(ct).ConfigureAwait(false);
        if (outstanding.Count > 0 && connection.Unconfirmed == 0)
        {
            return; // flushed TCP items just became Done
        }

        var wait = link.InputDone ? Task.CompletedTask : input.WaitToReadAsync(ct).AsTask();
        await Task.WhenAny(wait, _wake.WaitAsync(TimeSpan.FromSeconds(1), ct), connection.Broken).ConfigureAwait(false);
        if (outstanding.Any(i => i.Done))
        {
            lastProgress.Restart();
        }
    }

    // One WRN line when a destination's TLS file starts failing to load (or another of its files does), none per retry.
    private void TlsMaterialFailed(TlsMaterialException?[] problems, int destination, TlsMaterialException ex)
    {
        if (problems[destination] is not { } previous || previous.File != ex.File)
        {
            Log.TlsMaterialUnusable(logger, options.Destinations[destination].Url, ex.What, ex.File, ex.Reason);
        }

        problems[destination] = ex;
        Stats.TlsProblem = ex.Message;
    }

    // The destination's TLS files loaded: one line when that ends a streak of failures.
    private void TlsMaterialLoaded(TlsMaterialException?[] problems, int destination)
    {
        if (problems[destination] is { } previous)
        {
            problems[destination] = null;
            Log.TlsMaterialUsable(logger, options.Destinations[destination].Url, previous.What, previous.File);
        }

        Stats.TlsProblem = problems.FirstOrDefault(p => p is not null)?.Message;
    }

    private async Task SendOneAsync(IShipConnection connection, ShipItem item, bool resend, CancellationToken ct)
    {
        if (item.Attempts > 3)
        {
            Log.Refused(logger, item.Cursor);
            item.Done = true; // never silently: logged above
            return;
        }

        await connection.SendAsync(item, ct).ConfigureAwait(false);
        Interlocked.Increment(ref Stats.Sent);
        SentTotal.Inc();
        BytesTotal.Inc(item.Payload.Length);
        if (resend)
        {
            Interlocked.Increment(ref Stats.Resent);
        }
    }

    // Everything up to the first unconfirmed item is delivered: its cursor can be saved. True when it moved. The
    // delivered items go back to the pool (nothing refers to them now: a connection lets go of an item before it is Done).
    private bool Commit(Queue<ShipItem> outstanding, ChannelReader<ShipItem> input, ref string? committed)
    {
        ShipItem? last = null;
        var delivered = false;
        while (outstanding.TryPeek(out var head) && head.Done)
        {
            outstanding.Dequeue();
            if (head.HasPayload)
            {
                Interlocked.Increment(ref Stats.Acknowledged);
                AckTotal.Inc();
                delivered = true;
            }

            if (last is not null)
            {
                _items.Return(last);
            }

            last = head;
        }

        var now = time.GetUtcNow();
        if (delivered)
        {
            Stats.LastDelivery = now;
        }

        // The oldest entry not yet delivered: in flight, or still queued when no receiver takes anything.
        Stats.OldestWaitingMicros = outstanding.TryPeek(out var oldest) ? oldest.RealtimeMicros
            : input.TryPeek(out var queued) ? queued.RealtimeMicros : 0;
        LagSeconds.Set(Stats.OldestWaitingMicros == 0 ? 0 : Math.Max(0, (now - DateTimeOffset.UnixEpoch.AddTicks(Stats.OldestWaitingMicros * 10)).TotalSeconds));
        if (last is null)
        {
            return false;
        }

        committed = last.Cursor; // one string per commit, not per entry
        _items.Return(last);
        return true;
    }

    private async Task<IShipConnection> ConnectAsync(int index, CancellationToken ct)
    {
        var o = options.Destinations[index];
        Destination.TryParse(o.Url, out var d);
        return d!.Kind is TransportKind.Relp or TransportKind.RelpTls
            ? await RelpConnection.ConnectAsync(d, o, new RelpWindow(options.RelpWindow, options.RelpWindowMax, time), options.ConnectTimeout, options.IoTimeout, () => _wake.Release(), logger, ct).ConfigureAwait(false)
            : await SyslogStreamConnection.ConnectAsync(d, o, options.ConnectTimeout, options.IoTimeout, ct).ConfigureAwait(false);
    }

    public sealed class JournalReadFailedException(Exception inner) : Exception($"cannot read the journal: {inner.Message}", inner);

    private static partial class Log
    {
        [LoggerMessage(5001, LogLevel.Information, "delivering to {Destination} (after {Failures} failed attempts)")]
        public static partial void Connected(ILogger logger, string destination, int failures);

        [LoggerMessage(5002, LogLevel.Warning, "cannot deliver to {Destination}: {Reason}; trying the next destination with backoff")]
        public static partial void ConnectFailed(ILogger logger, string destination, string reason);

        [LoggerMessage(5003, LogLevel.Warning, "lost {Destination}: {Reason}; unacknowledged messages will be sent again")]
        public static partial void ConnectionLost(ILogger logger, string destination, string reason);

        [LoggerMessage(5004, LogLevel.Warning, "the journal no longer holds the saved entry in {File}: starting at the {Choice} (configured); entries may be missing or sent twice")]
        public static partial void CursorUnknown(ILogger logger, string file, string choice);

        [LoggerMessage(5005, LogLevel.Warning, "cannot use the saved cursor in {File} ({Reason}): starting at the {Choice} (Shipper:OnUnknownCursor)")]
        public static partial void CursorUnreadable(ILogger logger, string file, string reason, string choice);

        [LoggerMessage(5006, LogLevel.Warning, "rate limit dropped {Count} entries in the last interval: {ByUnit}")]
        public static partial void RateLimited(ILogger logger, long count, string byUnit);

        [LoggerMessage(5007, LogLevel.Error, "cannot read the journal: {Reason}")]
        public static partial void JournalFailed(ILogger logger, string reason);

        [LoggerMessage(5008, LogLevel.Error, "gave up: no delivery for {Seconds}s ({Reason}); the cursor stays at the last acknowledged entry")]
        public static partial void GaveUp(ILogger logger, double seconds, string reason);

        [LoggerMessage(5009, LogLevel.Error, "the receiver refused the entry at {Cursor} three times: skipping it")]
        public static partial void Refused(ILogger logger, string cursor);

        [LoggerMessage(5011, LogLevel.Warning, "cannot load the TLS {What} {File} for {Destination}: {Reason}; retrying with backoff until it loads (the journal keeps the entries meanwhile)")]
        public static partial void TlsMaterialUnusable(ILogger logger, string destination, string what, string file, string reason);

        [LoggerMessage(5012, LogLevel.Information, "the TLS files for {Destination} load again (the last one failing was the {What} {File})")]
        public static partial void TlsMaterialUsable(ILogger logger, string destination, string what, string file);
    }
}
