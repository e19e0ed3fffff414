using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Toolforge.Agents.Common.Syslog.Relp;

public sealed record RelpFrame(long Txnr, string Command, string Data);
