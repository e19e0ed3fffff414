using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>A receiver could not be reached or used; the shipper retries with backoff (<see cref="TlsMaterialException"/> is one kind).</summary>
public class DeliveryException(string message, Exception? inner = null) : Exception(message, inner);
