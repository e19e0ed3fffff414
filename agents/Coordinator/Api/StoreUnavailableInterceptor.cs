using Grpc.Core;
using Grpc.Core.Interceptors;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Api;

/// <summary>
/// A call whose write found the database unavailable ends with UNAVAILABLE (nothing was acknowledged, so the agent
/// keeps its state and sends it again), never with a stack trace; the store is marked down for the health service.
/// Until the store is migrated and loaded (<see cref="StoreStartup"/>: PostgreSQL down when the instance started)
/// every call but the health service's is answered so at once: this instance knows nothing yet.
/// </summary>
public sealed class StoreUnavailableInterceptor(StoreHealth health, StoreStartup startup) : Interceptor
{
    private const string Detail = "the coordinator's database is unavailable; nothing was stored, send again";
    private const string HealthService = "/grpc.health.v1.Health/";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        RefuseUntilStarted(context);
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            throw Unavailable(ex);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        RefuseUntilStarted(context);
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            throw Unavailable(ex);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        RefuseUntilStarted(context);
        try
        {
            return await continuation(requestStream, context).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            throw Unavailable(ex);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        RefuseUntilStarted(context);
        try
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            throw Unavailable(ex);
        }
    }

    private void RefuseUntilStarted(ServerCallContext context)
    {
        if (!startup.IsReady && !context.Method.StartsWith(HealthService, StringComparison.Ordinal))
        {
            throw new RpcException(new Status(StatusCode.Unavailable, Detail));
        }
    }

    private RpcException Unavailable(StoreUnavailableException ex)
    {
        health.MarkUnavailable(ex.Message);
        return new RpcException(new Status(StatusCode.Unavailable, Detail));
    }
}
