using System.Buffers;
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>Opening TCP and TLS streams with deadlines.</summary>
internal static class Streams
{
    public static async Task<(TcpClient Client, Stream Stream)> ConnectAsync(Destination d, DestinationOptions o, TimeSpan timeout, CancellationToken ct)
    {
        // Read at every attempt, before connecting: a file being rewritten is a TlsMaterialException, retried.
        X509Certificate2Collection? bundle = null;
        X509Certificate2? clientCertificate = null;
        if (d.Kind is TransportKind.Tls or TransportKind.RelpTls)
        {
            (bundle, clientCertificate) = TlsMaterial.Load(d, o);
        }

        var client = new TcpClient { NoDelay = false };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await client.ConnectAsync(d.Host, d.Port, cts.Token).ConfigureAwait(false);
            client.SendBufferSize = 1 << 20;
            Stream stream = client.GetStream();
            if (bundle is not null)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                var options = new SslClientAuthenticationOptions
                {
                    // The receiver's certificate must carry this name (checked by ServerValidator with the chain).
                    TargetHost = o.ServerName.Length > 0 ? o.ServerName : d.Host,
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = Certificates.ServerValidator(bundle),
                };
                if (clientCertificate is not null)
                {
                    options.ClientCertificates = [clientCertificate];
                }

                try
                {
                    await ssl.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
                }
                catch (AuthenticationException ex)
                {
                    await ssl.DisposeAsync().ConfigureAwait(false);
                    throw new DeliveryException($"{d}: TLS handshake refused: {ex.Message} (is the receiver's certificate signed by {o.CaBundle}, for the name {options.TargetHost}, and is ours permitted there?)", ex);
                }

                stream = ssl;
            }

            return (client, stream);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            client.Dispose();
            throw new DeliveryException(ex is OperationCanceledException ? $"{d}: no connection within {timeout.TotalSeconds:0}s" : $"{d}: {ex.Message}", ex);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }
}
