using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>
/// The daemon never stops shipping silently: TLS files that cannot be loaded at connect time (puppet rewriting
/// ca.pem, a renewal writing the certificate and then the key) are retried with backoff and the check says why; a
/// failure nobody expected stops the daemon with exit code 1, so systemd starts it again.
/// </summary>
public sealed partial class TlsMaterialTests
{
    private const string Receiver = "syslog.test";
    private const string Worker = "worker-a.test";

    [Fact]
    public async Task Daemon_CaCertificateAndKeyUnloadable_KeepsRetrying_CheckSaysWhy_ThenEveryEntryArrivesOnce_AndTheCheckClears()
    {
        using var dir = new TempDir();
        using var ca = DevPki.Create("syslog test CA");
        ca.WriteCa(dir.Path);
        ca.IssueTo(dir.Path, Receiver, server: true);
        ca.IssueTo(dir.Path, Worker);
        ca.IssueTo(dir.Path, "worker-b.test");
        await using var rsyslog = await RsyslogReceiver.StartShippedAsync(new RsyslogReceiver.Tls(dir["ca.pem"], dir[Receiver + ".pem"], dir[Receiver + ".key"], [Worker]));

        // The shipper's own copies of its TLS files: the ones this test breaks (the receiver keeps its own).
        File.Copy(dir["ca.pem"], dir["client-ca.pem"]);
        File.Copy(dir[Worker + ".pem"], dir["client.pem"]);
        File.Copy(dir[Worker + ".key"], dir["client.key"]);
        Directory.CreateDirectory(dir["journal"]);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        var batches = 0;
        async Task WriteBatchAsync(int firstSeq)
        {
            // Written aside, then renamed into the journal directory the daemon follows: it sees whole files only.
            var name = $"batch{batches++}.journal";
            await Numbered.WriteAsync(dir[name], 100, host: "worker-a", startMicros: now + (firstSeq * 1000), firstSeq: firstSeq);
            File.Move(dir[name], Path.Combine(dir["journal"], name));
        }

        await WriteBatchAsync(0);
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Shipper"] = new JsonObject
            {
                ["Destinations"] = new JsonArray(new JsonObject
                {
                    ["Url"] = $"relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}",
                    ["CaBundle"] = dir["client-ca.pem"],
                    ["Certificate"] = dir["client.pem"],
                    ["Key"] = dir["client.key"],
                    ["ServerName"] = Receiver,
                }),
                ["JournalDirectory"] = dir["journal"],
                ["StateFile"] = dir["state"],
                ["StartAt"] = "head",
                ["ReconnectMin"] = "00:00:00.200",
                ["ReconnectMax"] = "00:00:01",
            },
        };
        await File.WriteAllTextAsync(dir["shipper.json"], config.ToJsonString());
        await using var daemon = BackgroundProcess.StartTool("toolforge-log-shipper", ["--config", dir["shipper.json"]]);
        Assert.True(await Peer.EventuallyAsync(() => Numbered.Received(rsyslog).Count == 100, TimeSpan.FromSeconds(60)), daemon.Output + rsyslog.Output);

        // Phase by phase, one file unusable: the receiver restarted so the shipper must connect (and load) again;
        // entries written meanwhile; the WRN line and the check name the file. Then the file put back: everything
        // arrives and the check clears.
        var phases = new (string What, string File, string Good, string Bad)[]
        {
            ("CA bundle", dir["client-ca.pem"], dir["ca.pem"], dir["garbage.pem"]),
            ("certificate", dir["client.pem"], dir[Worker + ".pem"], dir["truncated.pem"]),
            ("key", dir["client.key"], dir[Worker + ".key"], dir["worker-b.test.key"]), // a renewal half-written: another key
        };
        await File.WriteAllTextAsync(dir["garbage.pem"], "puppet is rewriting this file\n");
        await File.WriteAllTextAsync(dir["truncated.pem"], "-----BEGIN CERTIFICATE-----\nMIIB\n");
        var seq = 100;
        foreach (var (what, file, good, bad) in phases)
        {
            var from = daemon.Output.Length;
            Replace(bad, file);
            await rsyslog.RestartAsync();
            var wrn = $"cannot load the TLS {what} {file} for relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}: ";
            Assert.True(await Peer.EventuallyAsync(() => daemon.Output[from..].Contains(wrn, StringComparison.Ordinal), TimeSpan.FromSeconds(60)), daemon.Output);
            await WriteBatchAsync(seq);
            seq += 100;
            var check = $"check shipper.delivery is warning: not delivering: relp+tls://127.0.0.1:{rsyslog.RelpTlsPort}: cannot load the TLS {what} {file}: ";
            Assert.True(await Peer.EventuallyAsync(() => daemon.Output[from..].Contains(check, StringComparison.Ordinal), TimeSpan.FromSeconds(30)), daemon.Output);

            var restoredAt = daemon.Output.Length;
            Replace(good, file);
            var total = seq;
            Assert.True(await Peer.EventuallyAsync(() => Numbered.Received(rsyslog).Count == total, TimeSpan.FromSeconds(60)), daemon.Output + rsyslog.Output);
            Assert.True(await Peer.EventuallyAsync(() => daemon.Output[restoredAt..].Contains("check shipper.delivery is ok", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), daemon.Output);
            var phase = daemon.Output[from..];
            Assert.Contains($"the TLS files for relp+tls://127.0.0.1:{rsyslog.RelpTlsPort} load again (the last one failing was the {what} {file})", phase, StringComparison.Ordinal);
            Assert.Equal(1, Count(phase, wrn)); // one line when the streak starts, not one per retry
            var retried = System.Text.RegularExpressions.Regex.Match(phase, @"load again .*\n.*delivering to \S+ \(after (\d+) failed attempts\)");
            Assert.True(retried.Success && int.Parse(retried.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 2, phase); // it kept trying
            Assert.False(daemon.HasExited, daemon.Output);
        }

        var received = Numbered.Received(rsyslog);
        Assert.Equal(Enumerable.Range(0, seq), received.Keys.Order());
        Assert.All(received, kv => Assert.True(kv.Value == 1, $"seq {kv.Key} arrived {kv.Value} times"));
        var output = daemon.Output;
        Assert.False(daemon.HasExited, output);
    }

    // As a careful writer does it (a new file renamed over the old): the shipper never reads half a file here.
    private static void Replace(string from, string to)
    {
        File.Copy(from, to + ".new", overwrite: true);
        File.Move(to + ".new", to, overwrite: true);
    }

    private static int Count(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }

    private sealed class ListLoggerProvider : ILoggerProvider
    {
        private readonly List<(LogLevel Level, string Message, Exception? Exception)> _lines = [];

        public IReadOnlyList<(LogLevel Level, string Message, Exception? Exception)> Lines
        {
            get
            {
                lock (_lines)
                {
                    return _lines.ToList();
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(ListLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner._lines)
                {
                    owner._lines.Add((logLevel, formatter(state, exception), exception));
                }
            }
        }
    }
}
