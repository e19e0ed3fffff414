using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Cluster;

/// <summary>
/// haproxy's agent check (`agent-check agent-port N`): haproxy connects, this answers one line and closes — "up"
/// while the instance serves (the same status its gRPC health service gives), "down" while its database is
/// unavailable — so haproxy sends new connections to the other instances. haproxy's own TLS check of the gRPC port
/// cannot present a client certificate and speak gRPC, hence this plain-TCP answer on its own port (off when 0).
/// </summary>
public sealed partial class HaproxyAgentCheck(StoreHealth health, IOptions<CoordinatorOptions> options, ILogger<HaproxyAgentCheck> logger) : BackgroundService
{
    public int BoundPort { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (o.HealthAgentPort == 0)
        {
            return;
        }

        var listener = new TcpListener(IPAddress.Parse(o.ListenAddress), o.HealthAgentPort);
        listener.Start();
        BoundPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        Log.Serving(logger, o.ListenAddress, BoundPort);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var client = await listener.AcceptTcpClientAsync(stoppingToken).ConfigureAwait(false);
                _ = AnswerAsync(client);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            listener.Stop();
        }
    }

    private async Task AnswerAsync(TcpClient client)
    {
        using (client)
        {
            var line = health.Healthy ? "up ready\n" : "down #database unavailable\n"; // no detail: this port has no authentication
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(line), cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                // haproxy went away before reading; it checks again
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2951, LogLevel.Information, "answering haproxy's agent check on {Address}:{Port}")]
        public static partial void Serving(ILogger logger, string address, int port);
    }
}
