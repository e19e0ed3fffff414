using System.Net.Sockets;
using Grpc.Net.Client;
using Toolforge.Agents.NodeAgent.Cri.V1;

namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>
/// A CRI runtime's RuntimeService over its unix socket (gRPC, HTTP/2 without TLS). Every call carries a deadline; the
/// connection is made per call (a stale one must not hide that the runtime restarted).
/// </summary>
internal sealed class CriClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public CriClient(string endpoint, TimeSpan connectTimeout)
    {
        Endpoint = endpoint;
        var path = Common.Checks.PeerErrors.UnixPath(endpoint) ?? throw new ArgumentException($"not a unix:// endpoint: {endpoint}", nameof(endpoint));
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectTimeout = connectTimeout,
                PooledConnectionLifetime = TimeSpan.Zero,
                ConnectCallback = Common.Http.LocalHttp.UnixSocket(path),
            },
            MaxReceiveMessageSize = 64 * 1024 * 1024, // a listing of a busy node is large
        });
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
        Images = new ImageService.ImageServiceClient(_channel);
    }

    public string Endpoint { get; }

    public RuntimeService.RuntimeServiceClient Runtime { get; }

    public ImageService.ImageServiceClient Images { get; }

    public void Dispose() => _channel.Dispose();
}
