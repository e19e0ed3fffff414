using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Toolforge.Agents.TestSupport;

// Shipping N journal entries (default 1,000,000) to a local rsyslogd, in one run:
//  - toolforge-log-shipper ship over RELP and over TCP (our defaults);
//  - rsyslog's own imjournal -> omrelp and -> omfwd (a second rsyslogd reading the same journal files, tuned as the
//    issue describes: windowSize 1024, LinkedList action queue, dequeueBatchSize 1024);
//  - the receiver's ceiling: a blast client writing pre-framed messages over TCP as fast as it can.
// For each: entries/s (until the receiver has them all), CPU seconds and peak RSS of the sender, and the peak of its
// anonymous memory: both senders read with sd_journal, which maps the journal files, and those mapped pages count in
// RSS (shared, reclaimable page cache) while the anonymous part is the process's own heap.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
// --ours-only: just our two senders (no peers: for trying a change; the README's figures come from a whole run).
var oursOnly = args.Contains("--ours-only");
args = args.Where(a => a != "--ours-only").ToArray();
var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
using var dir = new TempDir("shipbench");
Console.WriteLine($"writing {n} entries with systemd-journal-remote...");
var files = await Numbered.WriteAsync(dir["bench.journal"], n);
var journalFiles = files.Where(f => f != "--journal-file").ToList();
var shipper = Path.Combine(Run.RepoRoot, "out", "bin", "toolforge-log-shipper");
if (!File.Exists(shipper))
{
    throw new FileNotFoundException("run ./build.sh build first", shipper);
}

async Task<(double Rate, double Cpu, double RssMb)> Measure(string label, RsyslogReceiver receiver, Func<Process> start)
{
    var sw = Stopwatch.StartNew();
    using var p = start();
    long peakKb = 0, peakAnonKb = 0;
    double cpu = 0;
    var quiet = new QuietWatch(receiver, sw);
    while (!quiet.Done(TimeSpan.FromMinutes(15)))
    {
        try
        {
            var status = File.ReadAllLines($"/proc/{p.Id}/status");
            long Kb(string key) => long.Parse(status.First(l => l.StartsWith(key, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            peakKb = Math.Max(peakKb, Kb("VmHWM:"));
            peakAnonKb = Math.Max(peakAnonKb, Kb("RssAnon:")); // without the journal files sd_journal maps (page cache)
            var stat = File.ReadAllText($"/proc/{p.Id}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            cpu = (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) / 100.0;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            // the sender exited; keep waiting for the receiver
        }

        await Task.Delay(250);
    }

    var seconds = quiet.LastGrowth.TotalSeconds;
    if (!p.HasExited)
    {
        p.Kill(entireProcessTree: true);
    }

    var got = receiver.Count();
    Console.WriteLine($"{label,-38} {got / seconds,10:0} entries/s   CPU {cpu,6:0.0} s   peak RSS {peakKb / 1024.0,6:0.0} MB (anonymous {peakAnonKb / 1024.0,5:0.0} MB)   ({got} of {n} in {seconds:0.0} s)");
    return (got / seconds, cpu, peakKb / 1024.0);
}

Process Start(string file, params string[] a)
{
    var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var x in a)
    {
        psi.ArgumentList.Add(x);
    }

    var p = Process.Start(psi)!;
    p.BeginOutputReadLine();
    p.BeginErrorReadLine();
    return p;
}

Console.WriteLine($"{"sender",-38} {"rate",10}");
foreach (var scheme in new[] { "relp", "tcp" })
{
    await using var rx = await RsyslogReceiver.StartAsync();
    var port = scheme == "relp" ? rx.RelpPort : rx.TcpPort;
    // TFA_BENCH_SHIP_ARGS: more arguments for our sender (e.g. --relp-window 1024), to compare with the defaults.
    var extra = (Environment.GetEnvironmentVariable("TFA_BENCH_SHIP_ARGS") ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries);
    await Measure($"toolforge-log-shipper {scheme} ({(extra.Length > 0 ? string.Join(' ', extra) : "defaults")})", rx,
        () => Start(shipper, ["ship", .. files, "--to", $"{scheme}://127.0.0.1:{port}", "--state-file", dir[$"{scheme}.state"], .. extra]));
}

if (oursOnly)
{
    if (args.Contains("--relp-ceiling") || Environment.GetEnvironmentVariable("TFA_BENCH_RELP_CEILING") == "1")
    {
        await using var rx = await RsyslogReceiver.StartAsync();
        await RelpBlast.RunAsync(rx, n);
    }

    return;
}

// rsyslog as the sender: imjournal reads journals of remote machines from /var/log/journal/remote when remote="on".
var remoteDir = "/var/log/journal/remote";
Directory.CreateDirectory(remoteDir);
var placed = journalFiles.Select(f => Path.Combine(remoteDir, "tfa-bench-" + Path.GetFileName(f).Replace("@", "-", StringComparison.Ordinal))).ToList();
try
{
    foreach (var (from, to) in journalFiles.Zip(placed))
    {
        File.Copy(from, to, overwrite: true);
    }

    foreach (var (label, action) in new[]
    {
        ("rsyslog imjournal -> omrelp (tuned)", "module(load=\"omrelp\")\naction(type=\"omrelp\" target=\"127.0.0.1\" port=\"{RELP}\" windowSize=\"1024\" queue.type=\"LinkedList\" queue.dequeueBatchSize=\"1024\")"),
        ("rsyslog imjournal -> omfwd tcp (tuned)", "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{TCP}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" queue.type=\"LinkedList\" queue.dequeueBatchSize=\"1024\")"),
    })
    {
        await using var rx = await RsyslogReceiver.StartAsync();
        using var sdir = new TempDir("rsender");
        await File.WriteAllTextAsync(sdir["sender.conf"], $"""
            global(workDirectory="{sdir.Path}")
            module(load="imjournal" StateFile="{sdir["imjournal.state"]}" Ratelimit.Interval="0" IgnorePreviousMessages="off" remote="on")
            template(name="fwd" type="string" string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% - - %msg%")
            {action.Replace("{RELP}", rx.RelpPort.ToString(CultureInfo.InvariantCulture)).Replace("{TCP}", rx.TcpPort.ToString(CultureInfo.InvariantCulture))}
            """);
        await Measure(label, rx, () => Start("rsyslogd", "-n", "-f", sdir["sender.conf"], "-i", sdir["sender.pid"]));
    }
}
finally
{
    foreach (var p in placed)
    {
        File.Delete(p);
    }
}

// The receiver's ceilings: pre-framed RFC 5424 messages over RELP (as fast as a big window allows) and over TCP.
{
    await using var rx = await RsyslogReceiver.StartAsync();
    await RelpBlast.RunAsync(rx, n);
}

// pre-framed RFC 5424 messages over TCP, written as fast as possible
{
    await using var rx = await RsyslogReceiver.StartAsync();
    var sw = Stopwatch.StartNew();
    using (var client = new TcpClient())
    {
        await client.ConnectAsync("127.0.0.1", rx.TcpPort);
        await using var s = new BufferedStream(client.GetStream(), 1 << 20);
        for (var i = 0; i < n; i++)
        {
            var app = Numbered.Apps[i % 4];
            var msg = Encoding.ASCII.GetBytes($"<{24 + (i % 8)}>1 2025-06-15T15:06:40.000000Z worker-9 {app} {1000 + (i % 4)} - - seq={i} the message of entry {i}");
            await s.WriteAsync(Encoding.ASCII.GetBytes($"{msg.Length} "));
            await s.WriteAsync(msg);
        }
    }

    var quiet = new QuietWatch(rx, sw);
    while (!quiet.Done(TimeSpan.FromMinutes(10)))
    {
        await Task.Delay(250);
    }

    Console.WriteLine($"{"blast client (receiver ceiling, TCP)",-38} {rx.Count() / quiet.LastGrowth.TotalSeconds,10:0} entries/s   ({rx.Count()} of {n})");
}

/// <summary>
/// The receiver's RELP ceiling: pre-framed syslog frames written as fast as the window allows (8,192 outstanding,
/// acknowledgements read on their own task), so the receiver, not the sender, is what is measured.
/// </summary>
internal static class RelpBlast
{
    public static async Task RunAsync(RsyslogReceiver rx, int n)
    {
        var sw = Stopwatch.StartNew();
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync("127.0.0.1", rx.RelpPort);
        var stream = client.GetStream();
        var reader = new Toolforge.Agents.Common.Syslog.Relp.RelpFrameReader(stream);
        await stream.WriteAsync(Toolforge.Agents.Common.Syslog.Relp.RelpFrameWriter.Frame(1, "open", "relp_version=0\nrelp_software=blast\ncommands=syslog"u8));
        if (!await reader.NextAsync(CancellationToken.None))
        {
            throw new IOException("no answer to open");
        }

        const int window = 8192;
        using var room = new SemaphoreSlim(window);
        var acked = 0;
        var acks = Task.Run(async () =>
        {
            while (acked < n && await reader.NextAsync(CancellationToken.None))
            {
                do
                {
                    acked++;
                    room.Release();
                }
                while (reader.TryNextBuffered());
            }
        });
        var buffer = new byte[1 << 20];
        var used = 0;
        for (var i = 0; i < n; i++)
        {
            await room.WaitAsync();
            var app = Numbered.Apps[i % 4];
            var msg = Encoding.ASCII.GetBytes($"<{24 + (i % 8)}>1 2025-06-15T15:06:40.000000Z worker-9 {app} {1000 + (i % 4)} - - seq={i} the message of entry {i}");
            used += Toolforge.Agents.Common.Syslog.Relp.RelpFrameWriter.Write(buffer.AsSpan(used), i + 2, "syslog"u8, msg);
            if (used > buffer.Length - 4096 || room.CurrentCount == 0 || i == n - 1)
            {
                await stream.WriteAsync(buffer.AsMemory(0, used));
                used = 0;
            }
        }

        await acks;
        var quiet = new QuietWatch(rx, sw);
        while (!quiet.Done(TimeSpan.FromMinutes(10)))
        {
            await Task.Delay(250);
        }

        Console.WriteLine($"{"blast client (receiver ceiling, RELP)",-38} {rx.Count() / quiet.LastGrowth.TotalSeconds,10:0} entries/s   ({rx.Count()} of {n})");
    }
}

/// <summary>
/// Done when the receiver's files have stopped growing for 2 s (counting lines on every poll would load the
/// machine); LastGrowth is when they last grew, on the run's stopwatch.
/// </summary>
internal sealed class QuietWatch(RsyslogReceiver receiver, Stopwatch clock)
{
    private long _size = -1;

    public TimeSpan LastGrowth { get; private set; }

    public bool Done(TimeSpan limit)
    {
        var now = Directory.Exists(receiver.OutDir) ? Directory.EnumerateFiles(receiver.OutDir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;
        if (now != _size)
        {
            _size = now;
            LastGrowth = clock.Elapsed;
        }

        return clock.Elapsed >= limit || (_size > 0 && clock.Elapsed - LastGrowth >= TimeSpan.FromSeconds(2));
    }
}
