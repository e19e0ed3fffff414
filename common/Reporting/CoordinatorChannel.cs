using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;

namespace Toolforge.Agents.Common.Reporting;

/// <summary>A gRPC channel to the coordinator over mutual TLS: our certificate, their chain checked against our CA bundle.</summary>
public static class CoordinatorChannel
{
    public static GrpcChannel Create(string address, X509Certificate2 clientCertificate, X509Certificate2Collection caBundle, TimeSpan connectTimeout)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(15),
            EnableMultipleHttp2Connections = true,
            SslOptions =
            {
                ClientCertificates = [clientCertificate],
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                RemoteCertificateValidationCallback = Tls.Certificates.ServerValidator(caBundle),
            },
        };
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 16 * 1024 * 1024,
            MaxSendMessageSize = 16 * 1024 * 1024,
        });
    }

    public static GrpcChannel Create(string address, string certificatePath, string keyPath, string caBundlePath, TimeSpan connectTimeout) =>
        Create(address, Tls.Certificates.LoadWithKey(certificatePath, keyPath), Tls.Certificates.LoadBundle(caBundlePath), connectTimeout);
}
