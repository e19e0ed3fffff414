using System.Globalization;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>The journal fields the shipper uses, read once per entry.</summary>
public sealed class JournalRecord : IJournalFieldSink
{
    private string? _sourceRealtime, _message, _priority, _facility, _hostname, _identifier, _comm, _syslogPid, _pid, _messageId, _unit, _bootId, _transport;

    private JournalRecord(string cursor, long realtimeMicros)
    {
        Cursor = cursor;
        RealtimeMicros = realtimeMicros;
    }

    public string Cursor { get; }
    public long RealtimeMicros { get; }
    public string? SourceRealtime => _sourceRealtime;
    public string? Message => _message;
    public string? Priority => _priority;
    public string? Facility => _facility;
    public string? Hostname => _hostname;
    public string? Identifier => _identifier;
    public string? Comm => _comm;
    public string? SyslogPid => _syslogPid;
    public string? Pid => _pid;
    public string? MessageId => _messageId;
    public string? Unit => _unit;
    public string? BootId => _bootId;
    public string? Transport => _transport;

    /// <summary>The current entry, its fields read in one pass (the first of a repeated field counts, as sd_journal_get_data's).</summary>
    public static JournalRecord Read(JournalReader j)
    {
        var r = new JournalRecord(j.Cursor(), j.RealtimeMicros());
        j.ReadFields(r);
        return r;
    }

    void IJournalFieldSink.Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        ref var slot = ref Slot(name);
        if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
        {
            slot ??= System.Text.Encoding.UTF8.GetString(value); // invalid UTF-8 is replaced, never dropped
        }
    }

    private ref string? Slot(ReadOnlySpan<byte> name)
    {
        switch (name.Length)
        {
            case 4 when name.SequenceEqual("_PID"u8): return ref _pid;
            case 5 when name.SequenceEqual("_COMM"u8): return ref _comm;
            case 7 when name.SequenceEqual("MESSAGE"u8): return ref _message;
            case 8 when name.SequenceEqual("PRIORITY"u8): return ref _priority;
            case 8 when name.SequenceEqual("_BOOT_ID"u8): return ref _bootId;
            case 9 when name.SequenceEqual("_HOSTNAME"u8): return ref _hostname;
            case 10 when name.SequenceEqual("SYSLOG_PID"u8): return ref _syslogPid;
            case 10 when name.SequenceEqual("MESSAGE_ID"u8): return ref _messageId;
            case 10 when name.SequenceEqual("_TRANSPORT"u8): return ref _transport;
            case 13 when name.SequenceEqual("_SYSTEMD_UNIT"u8): return ref _unit;
            case 15 when name.SequenceEqual("SYSLOG_FACILITY"u8): return ref _facility;
            case 17 when name.SequenceEqual("SYSLOG_IDENTIFIER"u8): return ref _identifier;
            case 26 when name.SequenceEqual("_SOURCE_REALTIME_TIMESTAMP"u8): return ref _sourceRealtime;
            default: return ref System.Runtime.CompilerServices.Unsafe.NullRef<string?>();
        }
    }

    public int Severity => int.TryParse(Priority, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 7 ? p : 5;
}
