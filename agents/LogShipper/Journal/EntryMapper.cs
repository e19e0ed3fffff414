using System.Globalization;
using Toolforge.Agents.Common.Journal;
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

    public static SyslogMessage Map(JournalRecord r)
    {
        var m = new SyslogMessage
        {
            Facility = int.TryParse(r.Facility, NumberStyles.None, CultureInfo.InvariantCulture, out var f) && f is >= 0 and <= 23 ? f : 1,
            Severity = r.Severity,
            TimestampMicros = long.TryParse(r.SourceRealtime, NumberStyles.None, CultureInfo.InvariantCulture, out var src) && src > 0 ? src : r.RealtimeMicros,
            Hostname = r.Hostname,
            AppName = r.Identifier ?? r.Comm,
            ProcId = r.SyslogPid ?? r.Pid,
            MsgId = r.MessageId,
            Message = r.Message ?? string.Empty,
        };
        var sd = new List<KeyValuePair<string, string>>(3);
        if (r.Unit is { Length: > 0 } unit)
        {
            sd.Add(new("unit", unit));
        }

        if (r.BootId is { Length: > 0 } boot)
        {
            sd.Add(new("boot_id", boot));
        }

        sd.Add(new("cursor", r.Cursor));
        m.StructuredData.Add(new SdElement(SdId, sd));
        return m;
    }
}
