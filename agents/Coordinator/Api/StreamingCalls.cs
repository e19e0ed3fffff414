using Grpc.Core;
using Microsoft.Extensions.Hosting;

namespace Toolforge.Agents.Coordinator.Api;

internal static class StreamingCalls
{
    /// <summary>
    /// The token of a long-lived server stream: cancelled when the caller goes away or the coordinator stops, so
    /// shutdown never waits for open watch, log-follow or command streams.
    /// </summary>
    public static CancellationTokenSource Lifetime(ServerCallContext context, IHostApplicationLifetime lifetime) =>
        CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
}
