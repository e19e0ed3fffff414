using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Threading.Channels;
using Serilog.Core;
using Serilog.Events;
using Toolforge.Agents.Common.Syslog;
using Toolforge.Agents.Common.Resilience;

namespace Toolforge.Agents.Common.Logging;

/// <summary>
/// Serilog sink that writes RFC 5424 messages (the same formatter the log-shipper uses) to the local syslog socket
/// (datagrams) or to a remote host over TCP with RFC 6587 octet counting. Writing never blocks the caller: events
/// go through a bounded queue; when it is full the oldest are dropped and the count is reported on stderr
/// (which systemd puts in the journal), never silently.
/// </summary>
public sealed class SyslogSink : ILogEventSink, IDisposable
{
    private const int QueueLength = 10_000;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Between delivery attempts while the syslog peer is away: 250 ms doubling, at most 30 s.</summary>
    private static readonly RetryBounds Redeliver = new(Initial: TimeSpan.FromMilliseconds(250), Max: TimeSpan.FromSeconds(30));

    private readonly SyslogTarget _target;
    private readonly int _facility;
    private readonly string _appName;
    private readonly string _hostname = Environment.MachineName;
    private readonly string _procId = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
    private readonly Channel<LogEvent> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _worker;
    private long _dropped;

    public SyslogSink(SyslogTarget target, int facility, string appName)
    {
        _target = target;
        _facility = facility;
        _appName = appName;
        _queue = Channel.CreateBounded<LogEvent>(new BoundedChannelOptions(QueueLength)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => Interlocked.Increment(ref _dropped));
        _worker = Task.Run(RunAsync);
    }

    public long Dropped => Interlocked.Read(ref _dropped);

    public void Emit(LogEvent logEvent) => _queue.Writer.TryWrite(logEvent);

    internal byte[] Format(LogEvent e)
    {
        var m = new SyslogMessage
        {
            Facility = _facility,
            Severity = LogLevels.ToSyslogSeverity(e.Level),
            TimestampMicros = e.Timestamp.ToUnixTimeMilliseconds() * 1000,
            Hostname = _hostname,
            AppName = _appName,
            ProcId = _procId,
            MsgId = LogLevels.ShortContext(e),
        };
        var text = new StringWriter(CultureInfo.InvariantCulture);
        text.Write(JournalFormatter.OneLine(JournalFormatter.Render(e)));
        if (e.Exception is { } ex)
        {
            text.Write(" | ");
            text.Write(JournalFormatter.OneLine(ex.ToString()));
        }

        m.Message = text.ToString();
        return Rfc5424.ToBytes(m, 64 * 1024);
    }

    private async Task RunAsync()
    {
        Socket? socket = null;
        // The sink cannot log through itself: its two lines per streak go to stderr (journald), with a syslog prefix.
        var streak = new RetryStreak(Redeliver, TimeProvider.System,
            (ex, _) => Console.Error.WriteLine($"<4>SyslogSink: cannot deliver to {Describe()}: {ex.Message}; retrying with backoff, queueing up to {QueueLength} events"),
            (failures, _) => Console.Error.WriteLine($"<5>SyslogSink: delivering to {Describe()} again after {failures} failed attempt(s)"));
        long reportedDrops = 0;
        try
        {
            while (await _queue.Reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (_queue.Reader.TryPeek(out var next))
                {
                    try
                    {
                        socket ??= await ConnectAsync(_stop.Token).ConfigureAwait(false);
                        var payload = Format(next);
                        if (_target.IsUnix)
                        {
                            socket.Send(payload);
                        }
                        else
                        {
                            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                            cts.CancelAfter(SendTimeout);
                            await socket.SendAsync(OctetCounting.Frame(payload), SocketFlags.None, cts.Token).ConfigureAwait(false);
                        }

                        _queue.Reader.TryRead(out _);
                        streak.Succeeded();
                    }
                    catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException
                        or OperationCanceledException && !_stop.IsCancellationRequested)
                    {
                        socket?.Dispose();
                        socket = null;
                        if (!await streak.FailedAndWaitAsync(ex, _stop.Token).ConfigureAwait(false))
                        {
                            return; // disposal: what is still queued is said below
                        }
                    }

                    var dropped = Dropped;
                    if (dropped != reportedDrops)
                    {
                        Console.Error.WriteLine($"<4>SyslogSink: dropped {dropped - reportedDrops} log events because {Describe()} could not keep up");
                        reportedDrops = dropped;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposal: whatever is still queued is lost, and said so below.
        }
        finally
        {
            socket?.Dispose();
            if (_queue.Reader.Count > 0)
            {
                Console.Error.WriteLine($"<4>SyslogSink: {_queue.Reader.Count} log events not delivered to {Describe()} at shutdown");
            }
        }
    }

    private async Task<Socket> ConnectAsync(CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(ConnectTimeout);
        if (_target.IsUnix)
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            try
            {
                await s.ConnectAsync(new UnixDomainSocketEndPoint(_target.PathOrHost), cts.Token).ConfigureAwait(false);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(_target.PathOrHost, _target.Port, cts.Token).ConfigureAwait(false);
            return tcp;
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    private string Describe() => _target.IsUnix ? $"unix:{_target.PathOrHost}" : $"tcp://{_target.PathOrHost}:{_target.Port}";

    public void Dispose()
    {
        // Give the queue a moment to drain, then stop.
        var sw = Stopwatch.StartNew();
        while (_queue.Reader.Count > 0 && sw.Elapsed < TimeSpan.FromSeconds(2))
        {
            Thread.Sleep(20);
        }

        _queue.Writer.TryComplete();
        _stop.Cancel();
        try
        {
            _worker.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException ex)
        {
            Console.Error.WriteLine($"<4>SyslogSink: stopped with an error: {ex.InnerException?.Message}");
        }

        _stop.Dispose();
    }
}
