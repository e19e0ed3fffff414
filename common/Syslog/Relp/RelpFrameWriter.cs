using System.Buffers.Text;
using System.Text;

namespace Toolforge.Agents.Common.Syslog.Relp;

/// <summary>Writes RELP frames: "TXNR SP COMMAND SP DATALEN [SP DATA] LF" (rsyslog's librelp framing).</summary>
public static class RelpFrameWriter
{
    /// <summary>The most a frame adds to its data: two 20-digit numbers, three spaces and LF, and the command.</summary>
    public static int Overhead(ReadOnlySpan<byte> command) => 20 + 1 + command.Length + 1 + 20 + 1 + 1;

    /// <summary>
    /// Writes a whole frame into <paramref name="into"/> (at least <see cref="Overhead"/> + the data long) and returns
    /// its length. "TXNR COMMAND DATALEN DATA LF", with the space before the data even when there is none, as librelp
    /// accepts.
    /// </summary>
    public static int Write(Span<byte> into, long txnr, ReadOnlySpan<byte> command, ReadOnlySpan<byte> data)
    {
        if (!Utf8Formatter.TryFormat(txnr, into, out var n))
        {
            throw new ArgumentException("buffer too small for a RELP frame", nameof(into));
        }

        into[n++] = (byte)' ';
        command.CopyTo(into[n..]);
        n += command.Length;
        into[n++] = (byte)' ';
        Utf8Formatter.TryFormat(data.Length, into[n..], out var m);
        n += m;
        into[n++] = (byte)' ';
        data.CopyTo(into[n..]);
        n += data.Length;
        into[n++] = (byte)'\n';
        return n;
    }

    /// <summary>A whole frame in one buffer.</summary>
    public static byte[] Frame(long txnr, string command, ReadOnlySpan<byte> data)
    {
        var c = Encoding.ASCII.GetBytes(command);
        var frame = new byte[Overhead(c) + data.Length];
        return frame[..Write(frame, txnr, c, data)];
    }
}
