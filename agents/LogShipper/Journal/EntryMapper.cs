using System.Buffers;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>
/// Journal entry → RFC 5424: PRI from SYSLOG_FACILITY and PRIORITY (user.notice when missing), the timestamp from
/// _SOURCE_REALTIME_TIMESTAMP then __REALTIME_TIMESTAMP (microseconds), HOSTNAME from _HOSTNAME, APP-NAME from
/// SYSLOG_IDENTIFIER then _COMM, PROCID from SYSLOG_PID then _PID, MSGID from MESSAGE_ID, and structured data
/// [journal@32473 unit=... boot_id=... cursor=...] (32473 is the documentation enterprise number of RFC 5612).
/// </summary>
public static class EntryMapper
{
    public const string SdId = "journal@32473";

    /// <summary>
    /// Writes the entry's message from its UTF-8 fields, with no object per entry; returns the bytes cut from MSG.
    /// The result is byte for byte what <see cref="Rfc5424.Write"/> makes of <see cref="Map"/> (the tests compare them).
    /// </summary>
    public static int Write(JournalEntry e, IBufferWriter<byte> output, int maxMessageBytes)
    {
        Rfc5424.WriteHeader(output, Facility(e), e.Severity, Timestamp(e),
            e[JournalField.Hostname], e.FirstOf(JournalField.Identifier, JournalField.Comm), e.FirstOf(JournalField.SyslogPid, JournalField.Pid), e[JournalField.MessageId]);
        Rfc5424.WriteSdElementStart(output, SdId);
        if (!e[JournalField.Unit].IsEmpty)
        {
            Rfc5424.WriteSdParam(output, "unit", e[JournalField.Unit]);
        }

        if (!e[JournalField.BootId].IsEmpty)
        {
            Rfc5424.WriteSdParam(output, "boot_id", e[JournalField.BootId]);
        }

        Rfc5424.WriteSdParam(output, "cursor", e[JournalField.Cursor]);
        Rfc5424.WriteSdElementEnd(output);
        return Rfc5424.WriteMessage(output, e[JournalField.Message], maxMessageBytes);
    }

    /// <summary>The entry as a <see cref="SyslogMessage"/> (text fields; what <see cref="Write"/> writes without making it).</summary>
    public static SyslogMessage Map(JournalEntry e)
    {
        var m = new SyslogMessage
        {
            Facility = Facility(e),
            Severity = e.Severity,
            TimestampMicros = Timestamp(e),
            Hostname = e.Text(JournalField.Hostname),
            AppName = e.Text(JournalField.Identifier) ?? e.Text(JournalField.Comm),
            ProcId = e.Text(JournalField.SyslogPid) ?? e.Text(JournalField.Pid),
            MsgId = e.Text(JournalField.MessageId),
            Message = e.Text(JournalField.Message) ?? string.Empty,
        };
        var sd = new List<KeyValuePair<string, string>>(3);
        if (e.Text(JournalField.Unit) is { Length: > 0 } unit)
        {
            sd.Add(new("unit", unit));
        }

        if (e.Text(JournalField.BootId) is { Length: > 0 } boot)
        {
            sd.Add(new("boot_id", boot));
        }

        sd.Add(new("cursor", e.Cursor));
        m.StructuredData.Add(new SdElement(SdId, sd));
        return m;
    }

    private static int Facility(JournalEntry e) => JournalEntry.TryParseNumber(e[JournalField.Facility], out var f) && f <= 23 ? (int)f : 1;

    private static long Timestamp(JournalEntry e) => JournalEntry.TryParseNumber(e[JournalField.SourceRealtime], out var src) && src > 0 ? src : e.RealtimeMicros;
}
