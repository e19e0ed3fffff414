using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Toolforge.Agents.Common.Syslog.Relp;

/// <summary>Reads RELP frames: "TXNR SP COMMAND SP DATALEN [SP DATA] LF".</summary>
public sealed class RelpFrameReader(Stream stream)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    public async Task<RelpFrame?> ReadAsync(CancellationToken ct)
    {
        var txnr = await TokenAsync(ct).ConfigureAwait(false);
        if (txnr is null)
        {
            return null;
        }

        var command = await TokenAsync(ct).ConfigureAwait(false) ?? throw new FormatException("RELP frame without a command");
        var lengthText = await TokenAsync(ct, allowNewline: true).ConfigureAwait(false) ?? throw new FormatException("RELP frame without a length");
        var ended = lengthText.EndsWith('\n');
        var length = int.Parse(lengthText.TrimEnd('\n'), NumberStyles.None, CultureInfo.InvariantCulture);
        var data = string.Empty;
        if (!ended)
        {
            var bytes = new byte[length];
            for (var got = 0; got < length;)
            {
                if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
                {
                    throw new IOException("connection closed inside a RELP frame");
                }

                var n = Math.Min(length - got, _end - _start);
                Buffer.BlockCopy(_buffer, _start, bytes, got, n);
                _start += n;
                got += n;
            }

            data = Encoding.UTF8.GetString(bytes);
            if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
            {
                throw new IOException("connection closed before a RELP frame's trailer");
            }

            if (_buffer[_start++] != (byte)'\n')
            {
                throw new FormatException("RELP frame does not end with LF");
            }
        }

        return new RelpFrame(long.Parse(txnr, NumberStyles.None, CultureInfo.InvariantCulture), command, data);
    }

    // A token up to a space (consumed); with allowNewline, a token ending in LF keeps it so the caller sees the frame ended.
    private async Task<string?> TokenAsync(CancellationToken ct, bool allowNewline = false)
    {
        var sb = new StringBuilder();
        while (true)
        {
            if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
            {
                return sb.Length == 0 ? null : throw new IOException("connection closed inside a RELP header");
            }

            var c = (char)_buffer[_start++];
            if (c == ' ')
            {
                return sb.ToString();
            }

            if (c == '\n' && allowNewline)
            {
                return sb.Append('\n').ToString();
            }

            if (sb.Length > 32)
            {
                throw new FormatException("RELP header token too long");
            }

            sb.Append(c);
        }
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        _start = 0;
        _end = await stream.ReadAsync(_buffer, ct).ConfigureAwait(false);
        return _end > 0;
    }
}
