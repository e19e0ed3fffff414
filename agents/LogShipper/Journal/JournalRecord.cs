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

    /// <summary>The current entry, its fields read in one pass (the first of a repeated field counts, as sd_journal_get_data's).</summary>
    public static JournalRecord Read(JournalReader j)
    {
        var f = default(Wanted);
        j.ReadFields(ref f);
        return new()
        {
            Cursor = j.Cursor(),
            RealtimeMicros = j.RealtimeMicros(),
            SourceRealtime = f.SourceRealtime,
            Message = f.Message,
            Priority = f.Priority,
            Facility = f.Facility,
            Hostname = f.Hostname,
            Identifier = f.Identifier,
            Comm = f.Comm,
            SyslogPid = f.SyslogPid,
            Pid = f.Pid,
            MessageId = f.MessageId,
            Unit = f.Unit,
            BootId = f.BootId,
            Transport = f.Transport,
        };
    }

    private struct Wanted : IJournalFieldSink
    {
        public string? SourceRealtime, Message, Priority, Facility, Hostname, Identifier, Comm, SyslogPid, Pid, MessageId, Unit, BootId, Transport;

        public void Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            ref var slot = ref Slot(name);
            if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
            {
                slot ??= System.Text.Encoding.UTF8.GetString(value); // invalid UTF-8 is replaced, never dropped
            }
        }

        [System.Diagnostics.CodeAnalysis.UnscopedRef]
        private ref string? Slot(ReadOnlySpan<byte> name)
        {
            switch (name.Length)
            {
                case 4 when name.SequenceEqual("_PID"u8): return ref Pid;
                case 5 when name.SequenceEqual("_COMM"u8): return ref Comm;
                case 7 when name.SequenceEqual("MESSAGE"u8): return ref Message;
                case 8 when name.SequenceEqual("PRIORITY"u8): return ref Priority;
                case 8 when name.SequenceEqual("_BOOT_ID"u8): return ref BootId;
                case 9 when name.SequenceEqual("_HOSTNAME"u8): return ref Hostname;
                case 10 when name.SequenceEqual("SYSLOG_PID"u8): return ref SyslogPid;
                case 10 when name.SequenceEqual("MESSAGE_ID"u8): return ref MessageId;
                case 10 when name.SequenceEqual("_TRANSPORT"u8): return ref Transport;
                case 13 when name.SequenceEqual("_SYSTEMD_UNIT"u8): return ref Unit;
                case 15 when name.SequenceEqual("SYSLOG_FACILITY"u8): return ref Facility;
                case 17 when name.SequenceEqual("SYSLOG_IDENTIFIER"u8): return ref Identifier;
                case 26 when name.SequenceEqual("_SOURCE_REALTIME_TIMESTAMP"u8): return ref SourceRealtime;
                default: return ref System.Runtime.CompilerServices.Unsafe.NullRef<string?>();
            }
        }
    }

    public int Severity => int.TryParse(Priority, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 7 ? p : 5;
}
