using System.Globalization;
using Serilog.Events;
using Serilog.Formatting;

namespace Toolforge.Agents.Common.Logging;

/// <summary>
/// Console output in the form systemd's journal reads from a service's stdout: "&lt;PRI&gt;Category[EventId]: message",
/// one line per event (newlines inside the message or exception become " | " so an event stays one journal entry).
/// </summary>
public sealed class JournalFormatter : ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        output.Write('<');
        output.Write(LogLevels.ToSyslogSeverity(logEvent.Level).ToString(CultureInfo.InvariantCulture));
        output.Write('>');
        WriteBody(logEvent, output, includeException: true, oneLine: true);
        output.Write('\n');
    }

    internal static void WriteBody(LogEvent logEvent, TextWriter output, bool includeException, bool oneLine)
    {
        output.Write(LogLevels.ShortContext(logEvent));
        if (logEvent.Properties.TryGetValue("EventId", out var id) && id is StructureValue sv
            && sv.Properties.FirstOrDefault(p => p.Name == "Id")?.Value is ScalarValue { Value: int eventId })
        {
            output.Write('[');
            output.Write(eventId.ToString(CultureInfo.InvariantCulture));
            output.Write(']');
        }

        output.Write(": ");
        output.Write(OneLine(Render(logEvent)));
        if (includeException && logEvent.Exception is { } ex)
        {
            output.Write(oneLine ? " | " : "\n");
            output.Write(oneLine ? OneLine(ex.ToString()) : Indented(ex.ToString()));
        }
    }

    /// <summary>
    /// Text made safe for one log line, whoever wrote it (a node's name, a check's message, a tenant's image): line
    /// breaks become " | ", every other control character (C0, DEL, C1) and direction override is escaped
    /// (<c>\x00</c>, <c>\x1b</c>, <c>\u{202e}</c>). No NUL reaches journald (which splits on it) and nothing starts
    /// a line of its own, so no "&lt;0&gt;" from outside can be read as a priority prefix.
    /// </summary>
    public static string OneLine(string s)
    {
        if (s.Contains('\n', StringComparison.Ordinal) || s.Contains('\r', StringComparison.Ordinal))
        {
            s = s.Replace("\r\n", " | ", StringComparison.Ordinal).Replace('\r', '\n').Replace("\n", " | ", StringComparison.Ordinal);
        }

        return Cli.Output.Escape(s);
    }

    // An exception on its own lines (a terminal's form): each line escaped, and indented so none starts at column 0.
    private static string Indented(string s) =>
        string.Join("\n", s.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').Select(l => l.Length > 0 && char.IsWhiteSpace(l[0]) ? Cli.Output.Escape(l) : "  " + Cli.Output.Escape(l)));

    /// <summary>
    /// The message with its values filled in, strings as they are: Serilog's own rendering would show
    /// <c>on http://"127.0.0.1":9502</c>, quoting every string, which reads wrong in a journal line.
    /// </summary>
    public static string Render(LogEvent logEvent)
    {
        var sb = new System.Text.StringBuilder();
        using var writer = new StringWriter(sb, CultureInfo.InvariantCulture);
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is Serilog.Parsing.PropertyToken p && logEvent.Properties.TryGetValue(p.PropertyName, out var value)
                && value is ScalarValue { Value: string text })
            {
                writer.Write(text);
            }
            else
            {
                token.Render(logEvent.Properties, writer, CultureInfo.InvariantCulture);
            }
        }

        writer.Flush();
        return sb.ToString();
    }
}

/// <summary>For a terminal: timestamp, level, category, message; exceptions on their own lines.</summary>
public sealed class PlainFormatter : ITextFormatter
{
    public void Format(LogEvent logEvent, TextWriter output)
    {
        output.Write(logEvent.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        output.Write(' ');
        output.Write(LogLevels.Short(logEvent.Level));
        output.Write(' ');
        JournalFormatter.WriteBody(logEvent, output, includeException: true, oneLine: false);
        output.Write('\n');
    }
}

internal static class LogLevels
{
    public static int ToSyslogSeverity(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal => 2,
        LogEventLevel.Error => 3,
        LogEventLevel.Warning => 4,
        LogEventLevel.Information => 6,
        _ => 7,
    };

    public static string Short(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal => "FTL",
        LogEventLevel.Error => "ERR",
        LogEventLevel.Warning => "WRN",
        LogEventLevel.Information => "INF",
        LogEventLevel.Debug => "DBG",
        _ => "VRB",
    };

    /// <summary>"Toolforge.Agents.NodeAgent.Checks.KubeletCheck" → "KubeletCheck".</summary>
    public static string ShortContext(LogEvent logEvent)
    {
        if (logEvent.Properties.TryGetValue("SourceContext", out var v) && v is ScalarValue { Value: string s })
        {
            var dot = s.LastIndexOf('.');
            return dot < 0 ? s : s[(dot + 1)..];
        }

        return "main";
    }
}
