using System.Buffers.Text;
using System.Text;

namespace Toolforge.Agents.Common.Syslog.Relp;

/// <summary>
/// Reads RELP frames: "TXNR SP COMMAND SP DATALEN [SP DATA] LF". The frame just read is a view into the reader's
/// buffer (<see cref="Txnr"/>, <see cref="Command"/>, <see cref="Data"/>), valid until the next read: a sender reading
/// 100,000 acknowledgements a second makes no string or object for them. <see cref="TryNextBuffered"/> takes the next
/// frame already received without reading, so a burst of acknowledgements is handled as one.
/// </summary>
public sealed class RelpFrameReader(Stream stream, Action? afterRead = null)
{
    private const int MaxToken = 32;
    private const int MaxData = 1 << 20;

    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private int _commandStart;
    private int _commandLength;
    private int _dataStart;
    private int _dataLength;

    public long Txnr { get; private set; }

    public ReadOnlySpan<byte> Command => _buffer.AsSpan(_commandStart, _commandLength);

    public ReadOnlySpan<byte> Data => _buffer.AsSpan(_dataStart, _dataLength);

    public string CommandText => Encoding.ASCII.GetString(Command);

    public string DataText => Encoding.UTF8.GetString(Data);

    /// <summary>The next frame (reading as needed); false when the connection ended cleanly between frames.</summary>
    public async ValueTask<bool> NextAsync(CancellationToken ct)
    {
        while (!TryParse())
        {
            if (!await FillAsync(ct).ConfigureAwait(false))
            {
                return _start == _end ? false : throw new IOException("connection closed inside a RELP frame");
            }
        }

        return true;
    }

    /// <summary>The next frame if it has already been received, without reading.</summary>
    public bool TryNextBuffered() => TryParse();

    /// <summary>The next frame as a record (strings made); null at a clean end.</summary>
    public async Task<RelpFrame?> ReadAsync(CancellationToken ct) =>
        await NextAsync(ct).ConfigureAwait(false) ? new RelpFrame(Txnr, CommandText, DataText) : null;

    private bool TryParse()
    {
        var span = _buffer.AsSpan(_start, _end - _start);
        if (!Token(span, 0, out var txnrEnd, allowNewline: false))
        {
            return false;
        }

        if (!Utf8Parser.TryParse(span[..txnrEnd], out long txnr, out var used) || used != txnrEnd || span[0] is < (byte)'0' or > (byte)'9')
        {
            throw new FormatException("RELP frame without a transaction number");
        }

        var commandStart = txnrEnd + 1;
        if (!Token(span, commandStart, out var commandEnd, allowNewline: false))
        {
            return false;
        }

        var lengthStart = commandEnd + 1;
        if (!Token(span, lengthStart, out var lengthEnd, allowNewline: true))
        {
            return false;
        }

        var lengthText = span[lengthStart..lengthEnd];
        if (!Utf8Parser.TryParse(lengthText, out int length, out used) || used != lengthText.Length || lengthText[0] is < (byte)'0' or > (byte)'9' || length > MaxData)
        {
            throw new FormatException("RELP frame without a valid length");
        }

        int dataStart, frameEnd;
        if (span[lengthEnd] == (byte)'\n')
        {
            if (length != 0)
            {
                throw new FormatException("RELP frame ends before its data");
            }

            dataStart = lengthEnd;
            frameEnd = lengthEnd + 1;
        }
        else
        {
            dataStart = lengthEnd + 1;
            if (span.Length < dataStart + length + 1)
            {
                return false;
            }

            if (span[dataStart + length] != (byte)'\n')
            {
                throw new FormatException("RELP frame does not end with LF");
            }

            frameEnd = dataStart + length + 1;
        }

        Txnr = txnr;
        (_commandStart, _commandLength) = (_start + commandStart, commandEnd - commandStart);
        (_dataStart, _dataLength) = (_start + dataStart, length);
        _start += frameEnd;
        return true;
    }

    // A token from `from` up to a space (or LF, when allowed); false when it has not all arrived yet.
    private static bool Token(ReadOnlySpan<byte> span, int from, out int end, bool allowNewline)
    {
        var rest = span[from..];
        var limit = Math.Min(rest.Length, MaxToken + 1);
        var i = allowNewline ? rest[..limit].IndexOfAny((byte)' ', (byte)'\n') : rest[..limit].IndexOf((byte)' ');
        if (i < 0)
        {
            end = 0;
            return rest.Length <= MaxToken ? false : throw new FormatException("RELP header token too long");
        }

        if (i == 0)
        {
            throw new FormatException("RELP header with an empty token");
        }

        end = from + i;
        return true;
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            (_end, _start) = (_end - _start, 0);
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2); // a frame larger than the buffer (bounded by MaxData)
        }

        var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
        afterRead?.Invoke();
        _end += n;
        return n > 0;
    }
}
