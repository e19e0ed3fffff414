using System.Text;
using Toolforge.Agents.Common.Journal;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>The journal fields the shipper uses (and the entry's cursor, kept the same way).</summary>
public enum JournalField
{
    SourceRealtime,
    Message,
    Priority,
    Facility,
    Hostname,
    Identifier,
    Comm,
    SyslogPid,
    Pid,
    MessageId,
    Unit,
    BootId,
    Transport,
    Cursor,
}

/// <summary>
/// The current journal entry's fields, as UTF-8 bytes copied into one buffer that is reused for the next entry: reading
/// an entry makes no object. The first of a repeated field counts, as with sd_journal_get_data. Text is made only on
/// request (<see cref="Text"/>: invalid UTF-8 is replaced, never dropped).
/// </summary>
public sealed class JournalEntry : IJournalFieldSink
{
    private const int InitialBuffer = 4096;
    private const int FieldCount = (int)JournalField.Cursor + 1;

    private readonly int[] _start = new int[FieldCount];
    private readonly int[] _length = new int[FieldCount];
    private byte[] _data = new byte[InitialBuffer];
    private int _used;

    public JournalEntry() => Begin(0);

    public long RealtimeMicros { get; private set; }

    /// <summary>Reads the journal's current entry, replacing what this held.</summary>
    public void Read(JournalReader journal)
    {
        Begin(journal.RealtimeMicros());
        journal.ReadCursor(this);
        journal.ReadFields(this);
    }

    /// <summary>Starts a new entry with no fields (then <see cref="IJournalFieldSink.Field"/> adds them, "__CURSOR" the cursor).</summary>
    public void Begin(long realtimeMicros)
    {
        Array.Fill(_length, -1);
        _used = 0;
        RealtimeMicros = realtimeMicros;
        if (_data.Length > 16 * InitialBuffer)
        {
            _data = new byte[InitialBuffer]; // a huge entry gives its memory back
        }
    }

    public bool Has(JournalField f) => _length[(int)f] >= 0;

    /// <summary>The field's bytes; empty when the entry has none (<see cref="Has"/> tells the two apart).</summary>
    public ReadOnlySpan<byte> this[JournalField f] => _length[(int)f] <= 0 ? default : _data.AsSpan(_start[(int)f], _length[(int)f]);

    public string? Text(JournalField f) => Has(f) ? Encoding.UTF8.GetString(this[f]) : null;

    /// <summary>The first of these fields the entry has, or empty.</summary>
    public ReadOnlySpan<byte> FirstOf(JournalField a, JournalField b) => Has(a) ? this[a] : this[b];

    /// <summary>PRIORITY when it is 0..7, else notice (5).</summary>
    public int Severity => TryParseNumber(this[JournalField.Priority], out var p) && p <= 7 ? (int)p : 5;

    public string Cursor => Text(JournalField.Cursor) ?? string.Empty;

    void IJournalFieldSink.Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        var f = Lookup(name);
        if (f >= 0 && _length[f] < 0)
        {
            if (_used + value.Length > _data.Length)
            {
                Array.Resize(ref _data, Math.Max(_used + value.Length, _data.Length * 2));
            }

            value.CopyTo(_data.AsSpan(_used));
            _start[f] = _used;
            _length[f] = value.Length;
            _used += value.Length;
        }
    }

    private static int Lookup(ReadOnlySpan<byte> name) => name.Length switch
    {
        4 when name.SequenceEqual("_PID"u8) => (int)JournalField.Pid,
        5 when name.SequenceEqual("_COMM"u8) => (int)JournalField.Comm,
        7 when name.SequenceEqual("MESSAGE"u8) => (int)JournalField.Message,
        8 when name.SequenceEqual("PRIORITY"u8) => (int)JournalField.Priority,
        8 when name.SequenceEqual("_BOOT_ID"u8) => (int)JournalField.BootId,
        8 when name.SequenceEqual("__CURSOR"u8) => (int)JournalField.Cursor,
        9 when name.SequenceEqual("_HOSTNAME"u8) => (int)JournalField.Hostname,
        10 when name.SequenceEqual("SYSLOG_PID"u8) => (int)JournalField.SyslogPid,
        10 when name.SequenceEqual("MESSAGE_ID"u8) => (int)JournalField.MessageId,
        10 when name.SequenceEqual("_TRANSPORT"u8) => (int)JournalField.Transport,
        13 when name.SequenceEqual("_SYSTEMD_UNIT"u8) => (int)JournalField.Unit,
        15 when name.SequenceEqual("SYSLOG_FACILITY"u8) => (int)JournalField.Facility,
        17 when name.SequenceEqual("SYSLOG_IDENTIFIER"u8) => (int)JournalField.Identifier,
        26 when name.SequenceEqual("_SOURCE_REALTIME_TIMESTAMP"u8) => (int)JournalField.SourceRealtime,
        _ => -1,
    };

    /// <summary>
    /// A non-negative decimal as <c>long.TryParse(text, NumberStyles.None, InvariantCulture)</c> reads the field's
    /// text: ASCII digits only (trailing NULs allowed, as .NET's parser allows them), no sign, no space, no overflow.
    /// </summary>
    public static bool TryParseNumber(ReadOnlySpan<byte> digits, out long value)
    {
        value = 0;
        var end = digits.Length;
        while (end > 0 && digits[end - 1] == 0)
        {
            end--;
        }

        if (end == 0)
        {
            return false;
        }

        for (var i = 0; i < end; i++)
        {
            var d = digits[i] - (byte)'0';
            if ((uint)d > 9 || value > (long.MaxValue - d) / 10)
            {
                value = 0;
                return false;
            }

            value = (value * 10) + d;
        }

        return true;
    }
}
