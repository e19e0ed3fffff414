using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>One journal entry on its way: its cursor, and its syslog message (null when filtered or rate-limited).</summary>
public sealed class ShipItem(string cursor, long realtimeMicros, byte[]? payload)
{
    public string Cursor { get; } = cursor;
    public long RealtimeMicros { get; } = realtimeMicros;
    public byte[]? Payload { get; } = payload;
    public volatile bool Done;
    public int Attempts;
}
