using System.Globalization;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>The journal fields the shipper uses, read once per entry.</summary>
public sealed class JournalRecord
{
    public string Cursor { get; init; } = string.Empty;
    public long RealtimeMicros { get; init; }
    public string? SourceRealtime { get; init; }
    public string? Message { get; init; }
    public string? Priority { get; init; }
    public string? Facility { get; init; }
    public string? Hostname { get; init; }
    public string? Identifier { get; init; }
    public string? Comm { get; init; }
    public string? SyslogPid { get; init; }
    public string? Pid { get; init; }
    public string? MessageId { get; init; }
    public string? Unit { get; init; }
    public string? BootId { get; init; }
    public string? Transport { get; init; }

    public static JournalRecord Read(JournalReader j) => new()
    {
        Cursor = j.Cursor(),
        RealtimeMicros = j.RealtimeMicros(),
        SourceRealtime = j.Field("_SOURCE_REALTIME_TIMESTAMP"),
        Message = j.Field("MESSAGE"),
        Priority = j.Field("PRIORITY"),
        Facility = j.Field("SYSLOG_FACILITY"),
        Hostname = j.Field("_HOSTNAME"),
        Identifier = j.Field("SYSLOG_IDENTIFIER"),
        Comm = j.Field("_COMM"),
        SyslogPid = j.Field("SYSLOG_PID"),
        Pid = j.Field("_PID"),
        MessageId = j.Field("MESSAGE_ID"),
        Unit = j.Field("_SYSTEMD_UNIT"),
        BootId = j.Field("_BOOT_ID"),
        Transport = j.Field("_TRANSPORT"),
    };

    public int Severity => int.TryParse(Priority, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 7 ? p : 5;
}
