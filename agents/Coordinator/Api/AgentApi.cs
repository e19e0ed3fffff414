using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Api;

/// <summary>What agents call: reports, the command stream and command progress. A caller acts only for its own node.</summary>
public sealed partial class AgentApi(
    StateStore state,
    BuildService builds,
    TimeProvider time,
    IOptions<CoordinatorOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<AgentApi> logger) : AgentService.AgentServiceBase
{
    private static readonly Counter Reports = Metrics.CreateCounter(
        "toolforge_coordinator_reports_total", "Reports accepted from agents.", "agent");
    private static readonly Counter Rejected = Metrics.CreateCounter(
        "toolforge_coordinator_reports_rejected_total", "Reports refused, by reason.", "reason");

    public override async Task<ReportResponse> Report(ReportRequest request, ServerCallContext context)
    {
        var identity = CallerAuthorizer.Identity(context);
        if (!string.Equals(identity, request.Node, StringComparison.OrdinalIgnoreCase))
        {
            Rejected.WithLabels("permission-denied").Inc();
            Log.WrongNode(logger, identity, request.Node);
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"certificate of {identity} may not report for node \"{request.Node}\""));
        }

        if (ReportValidator.Validate(request) is { } problem)
        {
            Rejected.WithLabels("invalid").Inc();
            Log.Invalid(logger, identity, problem);
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        request.Node = identity.ToLowerInvariant();
        await state.ApplyReportAsync(request).ConfigureAwait(false);
        Reports.WithLabels(NodeJudge.AgentName(request.Agent)).Inc();
        return new ReportResponse
        {
            HeartbeatInterval = Duration.FromTimeSpan(options.Value.HeartbeatInterval),
            ReceivedAt = Timestamp.FromDateTimeOffset(time.GetUtcNow()),
        };
    }

    public override async Task ReceiveCommands(ReceiveCommandsRequest request, IServerStreamWriter<Command> responseStream, ServerCallContext context)
    {
        var identity = CallerAuthorizer.Identity(context);
        if (!string.Equals(identity, request.Node, StringComparison.OrdinalIgnoreCase))
        {
            Log.WrongNode(logger, identity, request.Node);
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"certificate of {identity} may not receive commands for node \"{request.Node}\""));
        }

        using var stream = StreamingCalls.Lifetime(context, lifetime);
        if (request.Agent != AgentKind.Builder)
        {
            // Only the builder takes commands today; others keep the stream open and receive nothing.
            state.SetCommandsConnected(identity, request.Agent, true);
            try
            {
                await Task.Delay(Timeout.Infinite, stream.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // the agent went away
            }
            finally
            {
                state.SetCommandsConnected(identity, request.Agent, false);
            }

            return;
        }

        var connection = builds.Connect(identity);
        state.SetCommandsConnected(identity, request.Agent, true);
        try
        {
            await foreach (var command in connection.Reader.ReadAllAsync(stream.Token).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(command, stream.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stream.IsCancellationRequested)
        {
            // the builder went away; queued builds wait for its return
        }
        finally
        {
            builds.Disconnect(connection);
            state.SetCommandsConnected(identity, request.Agent, false);
        }
    }

    public override async Task<CommandProgressAck> ReportCommandProgress(CommandProgress request, ServerCallContext context)
    {
        var identity = CallerAuthorizer.Identity(context);
        if (!string.Equals(identity, request.Node, StringComparison.OrdinalIgnoreCase))
        {
            Log.WrongNode(logger, identity, request.Node);
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"certificate of {identity} may not report progress for node \"{request.Node}\""));
        }

        if (request.LogLines.Count > 10_000 || request.LogLines.Any(l => l.Length > 16_384))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "log_lines: at most 10000 lines of at most 16384 characters per call"));
        }

        if (await builds.ProgressAsync(identity, request).ConfigureAwait(false) is { } problem)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        return new CommandProgressAck();
    }

    private static partial class Log
    {
        [LoggerMessage(2501, LogLevel.Warning, "refused: certificate of {Identity} tried to act for node {Node}")]
        public static partial void WrongNode(ILogger logger, string identity, string node);

        [LoggerMessage(2502, LogLevel.Warning, "refused an invalid report from {Identity}: {Problem}")]
        public static partial void Invalid(ILogger logger, string identity, string problem);
    }
}
