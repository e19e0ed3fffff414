using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Toolforge.Agents.Common.Syslog;

/// <summary>One structured-data element: [id name="value" ...].</summary>
public sealed record SdElement(string Id, IReadOnlyList<KeyValuePair<string, string>> Params);

/// <summary>
/// The fields of one RFC 5424 message. Anything missing is written as the NILVALUE "-".
/// Timestamps are microseconds since the Unix epoch (what the journal stores).
/// </summary>
public sealed class SyslogMessage
{
    public int Facility { get; set; } = 1;        // user
    public int Severity { get; set; } = 5;        // notice
    public long? TimestampMicros { get; set; }
    public string? Hostname { get; set; }
    public string? AppName { get; set; }
    public string? ProcId { get; set; }
    public string? MsgId { get; set; }
    public List<SdElement> StructuredData { get; } = [];
    public string Message { get; set; } = string.Empty;
}

/// <summary>
/// RFC 5424 formatting shared by the daemons' own syslog sink and the log-shipper.
/// Header fields are cut to the RFC's lengths and made printable US-ASCII; structured data values are escaped
/// ('"', '\' and ']' get a backslash); the message is UTF-8 without a BOM. A message longer than the limit is
/// cut at a character boundary and ends with a marker that says how much was cut: never silently.
/// </summary>
public static class Rfc5424
{
    public const int MaxHostname = 255;
    public const int MaxAppName = 48;
    public const int MaxProcId = 128;
    public const int MaxMsgId = 32;
    public const int MaxSdName = 32;
    public const string TruncationMarker = "...[truncated {0} bytes]";

    /// <summary>Writes the message to <paramref name="output"/>; returns the number of bytes cut from MSG (0 if none).</summary>
    public static int Write(SyslogMessage m, IBufferWriter<byte> output, int maxMessageBytes = int.MaxValue)
    {
        WriteHeader(output, m.Facility, m.Severity, m.TimestampMicros, m.Hostname, m.AppName, m.ProcId, m.MsgId);
        if (m.StructuredData.Count == 0)
        {
            WriteAscii(output, "-");
        }
        else
        {
            foreach (var e in m.StructuredData)
            {
                WriteSdElement(output, e);
            }
        }

        return WriteMessage(output, m.Message, maxMessageBytes);
    }

    public static byte[] ToBytes(SyslogMessage m, int maxMessageBytes = int.MaxValue)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + m.Message.Length);
        Write(m, buffer, maxMessageBytes);
        return buffer.WrittenSpan.ToArray();
    }

    public static int Pri(int facility, int severity) => (Math.Clamp(facility, 0, 23) * 8) + Math.Clamp(severity, 0, 7);

    /// <summary>Writes "&lt;PRI&gt;1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID " (with the trailing space).</summary>
    public static void WriteHeader(IBufferWriter<byte> output, int facility, int severity, long? timestampMicros,
        string? hostname, string? appName, string? procId, string? msgId) =>
        WriteHeader(output, facility, severity, timestampMicros, Utf8(hostname), Utf8(appName), Utf8(procId), Utf8(msgId));

    /// <summary>The header from UTF-8 fields (empty: the NILVALUE), written exactly as the string form writes their text.</summary>
    public static void WriteHeader(IBufferWriter<byte> output, int facility, int severity, long? timestampMicros,
        ReadOnlySpan<byte> hostname, ReadOnlySpan<byte> appName, ReadOnlySpan<byte> procId, ReadOnlySpan<byte> msgId)
    {
        var span = output.GetSpan(16);
        span[0] = (byte)'<';
        Utf8Formatter.TryFormat(Pri(facility, severity), span[1..], out var n);
        span[1 + n] = (byte)'>';
        span[2 + n] = (byte)'1';
        span[3 + n] = (byte)' ';
        output.Advance(4 + n);
        WriteTimestamp(output, timestampMicros);
        WriteAscii(output, " ");
        WriteHeaderField(output, hostname, MaxHostname);
        WriteAscii(output, " ");
        WriteHeaderField(output, appName, MaxAppName);
        WriteAscii(output, " ");
        WriteHeaderField(output, procId, MaxProcId);
        WriteAscii(output, " ");
        WriteHeaderField(output, msgId, MaxMsgId);
        WriteAscii(output, " ");
    }

    private static byte[] Utf8(string? text) => string.IsNullOrEmpty(text) ? [] : Encoding.UTF8.GetBytes(text);

    public static void WriteTimestamp(IBufferWriter<byte> output, long? micros)
    {
        if (micros is not { } us)
        {
            WriteAscii(output, "-");
            return;
        }

        var t = DateTimeOffset.UnixEpoch.AddTicks(us * 10);
        var span = output.GetSpan(27);
        // yyyy-MM-ddTHH:mm:ss.ffffffZ (27 bytes)
        Digits(span, 0, t.Year, 4); span[4] = (byte)'-';
        Digits(span, 5, t.Month, 2); span[7] = (byte)'-';
        Digits(span, 8, t.Day, 2); span[10] = (byte)'T';
        Digits(span, 11, t.Hour, 2); span[13] = (byte)':';
        Digits(span, 14, t.Minute, 2); span[16] = (byte)':';
        Digits(span, 17, t.Second, 2); span[19] = (byte)'.';
        Digits(span, 20, (int)(us % 1_000_000 + 1_000_000) % 1_000_000, 6); span[26] = (byte)'Z';
        output.Advance(27);
    }

    private static void Digits(Span<byte> s, int at, int value, int width)
    {
        for (var i = width - 1; i >= 0; i--)
        {
            s[at + i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    /// <summary>A header field: printable US-ASCII (33..126) only, cut to its length, "-" when empty.</summary>
    public static void WriteHeaderField(IBufferWriter<byte> output, string? value, int maxLength) => WriteHeaderField(output, Utf8(value), maxLength);

    /// <summary>
    /// A header field from UTF-8, as the string form writes the decoded text: one byte per UTF-16 code unit (printable
    /// US-ASCII as it is, anything else '_'), cut to <paramref name="maxLength"/> units, "-" when empty. An invalid
    /// sequence counts as the one U+FFFD that decoding makes of it.
    /// </summary>
    public static void WriteHeaderField(IBufferWriter<byte> output, ReadOnlySpan<byte> utf8, int maxLength)
    {
        if (utf8.IsEmpty)
        {
            WriteAscii(output, "-");
            return;
        }

        var span = output.GetSpan(Math.Min(utf8.Length, maxLength)); // a code unit takes at least one byte
        var n = 0;
        while (!utf8.IsEmpty && n < maxLength)
        {
            var b = utf8[0];
            if (b < 0x80)
            {
                span[n++] = b is >= 33 and <= 126 ? b : (byte)'_';
                utf8 = utf8[1..];
                continue;
            }

            Rune.DecodeFromUtf8(utf8, out var rune, out var consumed); // invalid: U+FFFD, one unit
            for (var u = 0; u < rune.Utf16SequenceLength && n < maxLength; u++)
            {
                span[n++] = (byte)'_';
            }

            utf8 = utf8[consumed..];
        }

        output.Advance(n);
    }

    public static void WriteSdElement(IBufferWriter<byte> output, SdElement e)
    {
        WriteSdElementStart(output, e.Id);
        foreach (var (name, value) in e.Params)
        {
            WriteSdParam(output, name, Encoding.UTF8.GetBytes(value));
        }

        WriteSdElementEnd(output);
    }

    /// <summary>"[ID"; the element's parameters follow (<see cref="WriteSdParam"/>), then <see cref="WriteSdElementEnd"/>.</summary>
    public static void WriteSdElementStart(IBufferWriter<byte> output, string id)
    {
        WriteAscii(output, "[");
        WriteSdName(output, id);
    }

    public static void WriteSdElementEnd(IBufferWriter<byte> output) => WriteAscii(output, "]");

    /// <summary>' NAME="VALUE"' with the value from UTF-8, escaped.</summary>
    public static void WriteSdParam(IBufferWriter<byte> output, string name, ReadOnlySpan<byte> utf8Value)
    {
        WriteAscii(output, " ");
        WriteSdName(output, name);
        WriteAscii(output, "=\"");
        WriteSdValue(output, utf8Value);
        WriteAscii(output, "\"");
    }

    // SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']', '"'.
    private static void WriteSdName(IBufferWriter<byte> output, string name)
    {
        var length = Math.Min(name.Length, MaxSdName);
        if (length == 0)
        {
            WriteAscii(output, "_");
            return;
        }

        var span = output.GetSpan(length);
        for (var i = 0; i < length; i++)
        {
            var c = name[i];
            span[i] = c is >= (char)33 and <= (char)126 and not '=' and not ']' and not '"' ? (byte)c : (byte)'_';
        }

        output.Advance(length);
    }

    /// <summary>
    /// A PARAM-VALUE from UTF-8: '"', '\' and ']' escaped by a backslash (UTF-8 never has those bytes inside a longer
    /// sequence); invalid UTF-8 is written as its decoded text (U+FFFD), as the string form does.
    /// </summary>
    private static void WriteSdValue(IBufferWriter<byte> output, ReadOnlySpan<byte> utf8)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            utf8 = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(utf8)); // now valid
        }

        while (!utf8.IsEmpty)
        {
            var i = utf8.IndexOfAny("\"]\\"u8);
            var plain = i < 0 ? utf8 : utf8[..i];
            plain.CopyTo(output.GetSpan(plain.Length));
            output.Advance(plain.Length);
            if (i < 0)
            {
                return;
            }

            var s = output.GetSpan(2);
            s[0] = (byte)'\\';
            s[1] = utf8[i];
            output.Advance(2);
            utf8 = utf8[(i + 1)..];
        }
    }

    /// <summary>" MSG" from UTF-8 (nothing when empty); returns how many bytes were cut. Invalid UTF-8 and a message over the limit go the string way.</summary>
    public static int WriteMessage(IBufferWriter<byte> output, ReadOnlySpan<byte> utf8, int maxMessageBytes)
    {
        if (utf8.IsEmpty)
        {
            return 0;
        }

        if (utf8.Length > maxMessageBytes || !System.Text.Unicode.Utf8.IsValid(utf8))
        {
            return WriteMessage(output, Encoding.UTF8.GetString(utf8), maxMessageBytes);
        }

        var span = output.GetSpan(1 + utf8.Length);
        span[0] = (byte)' ';
        utf8.CopyTo(span[1..]);
        output.Advance(1 + utf8.Length);
        return 0;
    }

    /// <summary>Writes " MSG" (a space, then the message) and returns how many bytes were cut.</summary>
    public static int WriteMessage(IBufferWriter<byte> output, string message, int maxMessageBytes)
    {
        if (message.Length == 0)
        {
            return 0;
        }

        WriteAscii(output, " ");
        var byteCount = Encoding.UTF8.GetByteCount(message);
        if (byteCount <= maxMessageBytes)
        {
            WriteUtf8(output, message);
            return 0;
        }

        // Cut at a character boundary, leaving room for the marker.
        var marker = string.Format(System.Globalization.CultureInfo.InvariantCulture, TruncationMarker, byteCount);
        var budget = Math.Max(0, maxMessageBytes - marker.Length);
        var chars = 0;
        var bytes = 0;
        while (chars < message.Length)
        {
            var step = char.IsHighSurrogate(message[chars]) && chars + 1 < message.Length ? 2 : 1;
            var size = Encoding.UTF8.GetByteCount(message.AsSpan(chars, step));
            if (bytes + size > budget)
            {
                break;
            }

            bytes += size;
            chars += step;
        }

        var cut = byteCount - bytes;
        marker = string.Format(System.Globalization.CultureInfo.InvariantCulture, TruncationMarker, cut);
        WriteUtf8(output, message.AsSpan(0, chars));
        WriteAscii(output, marker);
        return cut;
    }

    private static void WriteUtf8(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return;
        }

        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var n = Encoding.UTF8.GetBytes(text, span);
        output.Advance(n);
    }

    private static void WriteAscii(IBufferWriter<byte> output, string text)
    {
        var span = output.GetSpan(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            span[i] = (byte)text[i];
        }

        output.Advance(text.Length);
    }
}

/// <summary>RFC 6587 octet-counting: "LEN SP MSG".</summary>
public static class OctetCounting
{
    /// <summary>The most framing adds to a message: a 10-digit length and the space.</summary>
    public const int Overhead = 11;

    /// <summary>Writes "LEN SP MSG" into <paramref name="into"/> (at least <see cref="Overhead"/> + the message long); returns its length.</summary>
    public static int Write(Span<byte> into, ReadOnlySpan<byte> message)
    {
        if (!Utf8Formatter.TryFormat(message.Length, into, out var n) || into.Length < n + 1 + message.Length)
        {
            throw new ArgumentException("buffer too small for an octet-counted frame", nameof(into));
        }

        into[n++] = (byte)' ';
        message.CopyTo(into[n..]);
        return n + message.Length;
    }

    public static byte[] Frame(ReadOnlySpan<byte> message)
    {
        var framed = new byte[Overhead + message.Length];
        return framed[..Write(framed, message)];
    }
}
