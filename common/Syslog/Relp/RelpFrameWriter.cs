using System.Globalization;
using System.Text;

namespace Toolforge.Agents.Common.Syslog.Relp;

/// <summary>Writes RELP frames: "TXNR SP COMMAND SP DATALEN [SP DATA] LF" (rsyslog's librelp framing).</summary>
public static class RelpFrameWriter
{
    /// <summary>The frame's header, "TXNR COMMAND DATALEN " (a space before the data even when there is none, as librelp accepts).</summary>
    public static byte[] Header(long txnr, string command, int dataLength) =>
        Encoding.ASCII.GetBytes($"{txnr.ToString(CultureInfo.InvariantCulture)} {command} {dataLength.ToString(CultureInfo.InvariantCulture)} ");

    /// <summary>A whole frame in one buffer.</summary>
    public static byte[] Frame(long txnr, string command, ReadOnlySpan<byte> data)
    {
        var header = Header(txnr, command, data.Length);
        var frame = new byte[header.Length + data.Length + 1];
        header.CopyTo(frame, 0);
        data.CopyTo(frame.AsSpan(header.Length));
        frame[^1] = (byte)'\n';
        return frame;
    }
}
