using Grpc.Core;
using Grpc.Core.Interceptors;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Api;

/// <summary>
/// A call whose write found the database unavailable ends with UNAVAILABLE (nothing was acknowledged, so the agent
/// keeps its state and sends it again), never with a stack trace; the store is marked down for the health service.
/// </summary>
public sealed class StoreUnavailableInterceptor(StoreHealth health) : Interceptor
{
    private const string Detail = "the coordinator's database is unavailable; nothing was stored, send again";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
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
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            throw Unavailable(ex);
        }
    }

    private RpcException Unavailable(StoreUnavailableException ex)
    {
        health.MarkUnavailable(ex.Message);
        return new RpcException(new Status(StatusCode.Unavailable, Detail));
    }
}
