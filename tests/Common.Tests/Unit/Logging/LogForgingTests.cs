using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Serilog.Core;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Toolforge.Agents.Common.Logging;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// Strings from outside (a node's name, a check's message) reach the daemons' logs: no NUL (journald splits on it), no
/// raw control byte, and no line that starts with a priority prefix ("&lt;0&gt;" would be an emergency on every
/// terminal), in the journal form, the terminal form and the RFC 5424 syslog form.
/// </summary>
public sealed partial class LogForgingTests
{
    private static readonly string[] Hostile =
    [
        "x\0<0>FORGED",
        "ok\r<0>FORGED emergency",
        "ok\n<0>FORGED\n<1>again",
        "\u001b]0;owned\u0007 title",
        "\u0085next line \u202eevil",
        "<0>at the start",
    ];

    private sealed class Capture : ILogEventSink
    {
        public List<LogEvent> Events { get; } = [];

        public void Emit(LogEvent logEvent) => Events.Add(logEvent);
    }

    [LoggerMessage(2999, LogLevel.Warning, "report from node {Node}: {Message}")]
    private static partial void Reported(Microsoft.Extensions.Logging.ILogger logger, string node, string message);

    [LoggerMessage(2998, LogLevel.Error, "failed for {Node}")]
    private static partial void Failed(Microsoft.Extensions.Logging.ILogger logger, Exception ex, string node);

    private static List<LogEvent> Events(Exception? withException = null)
    {
        var capture = new Capture();
        using var serilog = new Serilog.LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(capture).CreateLogger();
        using var factory = new SerilogLoggerFactory(serilog);
        var logger = factory.CreateLogger("Toolforge.Agents.Coordinator.Api.AgentApi");
        foreach (var h in Hostile)
        {
            Reported(logger, h, h);
            if (withException is not null)
            {
                Failed(logger, withException, h);
            }
        }

        return capture.Events;
    }

    private static void AssertSafe(string output, string form)
    {
        Assert.DoesNotContain('\0', output);
        foreach (var line in output.Split('\n'))
        {
            Assert.False(line.Any(c => c < ' ' && c != '\t' || c is >= '\u007f' and < '\u00a0' || c == '\u202e'), $"{form}: a raw control character in {line}");
        }

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.False(l.Contains("<0>FORGED", StringComparison.Ordinal) && l.StartsWith("<0>", StringComparison.Ordinal), $"{form}: {l}"));
        Assert.All(lines, l => Assert.DoesNotMatch(@"^<\d>(FORGED|again|at the start)", l));
    }

    [Fact]
    public void JournalForm_OneLinePerEvent_EveryControlCharacterEscaped()
    {
        var events = Events(new InvalidOperationException("bad\n<0>FORGED from an exception"));
        var text = new StringWriter();
        foreach (var e in events)
        {
            new JournalFormatter().Format(e, text);
        }

        var output = text.ToString();
        AssertSafe(output, "journal");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(events.Count, lines.Length);
        Assert.All(lines, l => Assert.Matches(@"^<[346]>AgentApi", l));
        Assert.Contains(@"x\x00<0>FORGED", output, StringComparison.Ordinal);
        Assert.Contains(@"\x1b]0;owned\x07", output, StringComparison.Ordinal);
        Assert.Contains(@"\u{202e}evil", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TerminalForm_NoLineStartsWithAPrefix_ExceptionLinesIndented()
    {
        var events = Events(new InvalidOperationException("bad\n<0>FORGED from an exception"));
        var text = new StringWriter();
        foreach (var e in events)
        {
            new PlainFormatter().Format(e, text);
        }

        AssertSafe(text.ToString(), "plain");
    }

    [Fact]
    public async Task SyslogForm_OverTcp_CarriesNoControlByte()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Assert.Null(SyslogTarget.TryParse($"tcp://127.0.0.1:{port}", out var target));
        var events = Events();
        using (var sink = new SyslogSink(target!, 3, "toolforge-coordinator"))
        {
            foreach (var e in events)
            {
                sink.Emit(e);
            }

            using var client = await listener.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
            var stream = client.GetStream();
            var received = new MemoryStream();
            var buffer = new byte[65536];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (Encoding.UTF8.GetString(received.ToArray()).Split("toolforge-coordinator").Length - 1 < events.Count)
            {
                var n = await stream.ReadAsync(buffer, timeout.Token);
                Assert.True(n > 0, "the sink closed the connection");
                received.Write(buffer, 0, n);
            }

            // Octet-counted frames "LEN <PRI>1 ..."; inside each message nothing but printable text.
            var text = Encoding.UTF8.GetString(received.ToArray());
            Assert.DoesNotContain('\0', text);
            Assert.DoesNotContain('\r', text);
            Assert.DoesNotContain('\u001b', text);
            Assert.DoesNotContain('\n', text);
            Assert.Contains(@"x\x00<0>FORGED", text, StringComparison.Ordinal);
        }
    }
}
