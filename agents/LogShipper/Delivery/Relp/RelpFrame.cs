using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.LogShipper.Delivery;

namespace Toolforge.Agents.LogShipper.Delivery.Relp;

public sealed record RelpFrame(long Txnr, string Command, string Data);
