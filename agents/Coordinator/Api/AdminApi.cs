using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Api;

/// <summary>What admins call through agentctl. Viewers read; only admins act, and every action is audited.</summary>
public sealed class AdminApi(
    StateStore state,
    BuildQueue builds,
    BuildLogs logs,
    ChangeFeed feed,
    CallerAuthorizer authorizer,
    StreamRegistry streams,
    AuditLog audit,
    TimeProvider time) : AdminService.AdminServiceBase
{
    private const int DefaultFindingsLimit = 1000;
    private const int DefaultBuildsLimit = 50;

    public override Task<ListNodesResponse> ListNodes(ListNodesRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list nodes");
        if (request.States.Count == 0)
        {
            return Task.FromResult(state.ListAllNodes()); // kept while nothing changed
        }

        var response = new ListNodesResponse { At = Timestamp.FromDateTimeOffset(time.GetUtcNow()) };
        response.Nodes.AddRange(state.ListNodes(request.States));
        return Task.FromResult(response);
    }

    public override Task<NodeDetail> GetNode(GetNodeRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "read nodes");
        return Task.FromResult(state.GetNode(request.Name)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no node \"{ReportLimits.Cut(request.Name, 64)}\"")));
    }

    public override Task<ListFindingsResponse> ListFindings(ListFindingsRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list findings");
        var response = new ListFindingsResponse();
        var limit = request.Limit > 0 ? Math.Min(request.Limit, 100_000) : DefaultFindingsLimit;
        response.Findings.AddRange(state.ListFindings(request.Node, request.Kind, request.Agent, limit));
        return Task.FromResult(response);
    }

    public override Task<ListBuildsResponse> ListBuilds(ListBuildsRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list builds");
        var response = new ListBuildsResponse();
        response.Builds.AddRange(builds.List(request.Limit > 0 ? Math.Min(request.Limit, 10_000) : DefaultBuildsLimit));
        return Task.FromResult(response);
    }

    public override Task<Build> GetBuild(GetBuildRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "read builds");
        return Task.FromResult(builds.Get(request.Id)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no build \"{ReportLimits.Cut(request.Id, 64)}\"")));
    }

    public override async Task<Build> RequestBuild(RequestBuildRequest request, ServerCallContext context)
    {
        var caller = authorizer.Identify(context);
        var identity = caller.Identity;
        var detail = ReportLimits.Cut(
            $"images={string.Join(",", request.Build?.Images ?? [])} tag={request.Build?.Tag} push={request.Build?.Push} no_cache={request.Build?.NoCache} builder={request.Builder}",
            ReportLimits.MaxMessage);
        try
        {
            authorizer.Require(context, Roles.Admin, "request builds");
        }
        catch (RpcException)
        {
            await audit.WriteRefusedAsync(identity, "request-build", "denied", detail).ConfigureAwait(false);
            throw;
        }

        if (BuildRequestValidator.Validate(request) is { } problem)
        {
            await audit.WriteRefusedAsync(identity, "request-build", "invalid", $"{detail} ({problem})").ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        var build = await builds.RequestAsync(identity, request).ConfigureAwait(false);
        await audit.WriteAsync(identity, "request-build", "accepted", $"build={build.Id} {detail}").ConfigureAwait(false);
        return build;
    }

    public override async Task StreamBuildLog(StreamBuildLogRequest request, IServerStreamWriter<BuildLogLine> responseStream, ServerCallContext context)
    {
        var caller = authorizer.Require(context, Roles.Viewer, "read build logs");
        if (builds.Get(request.Id) is not { } build)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"no build \"{ReportLimits.Cut(request.Id, 64)}\""));
        }

        using var stream = streams.Open(context, caller, Roles.Viewer);
        try
        {
            await foreach (var line in logs.StreamAsync(long.Parse(build.Id, System.Globalization.CultureInfo.InvariantCulture), request.Follow, stream.Token).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(line, stream.Token).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException ex)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, ex.Message));
        }
        catch (OperationCanceledException) when (stream.IsCancellationRequested)
        {
            stream.ThrowIfRevoked(); // else the follower went away or the coordinator stops
        }
    }

    public override async Task Watch(WatchRequest request, IServerStreamWriter<WatchEvent> responseStream, ServerCallContext context)
    {
        var caller = authorizer.Require(context, Roles.Viewer, "watch");
        // Subscribe before the snapshot: a change made meanwhile may arrive twice, never not at all.
        using var stream = streams.Open(context, caller, Roles.Viewer);
        using var subscription = feed.Subscribe();
        var snapshot = new Snapshot();
        snapshot.Nodes.AddRange(state.ListNodes());
        snapshot.Builds.AddRange(builds.List(DefaultBuildsLimit));
        await responseStream.WriteAsync(new WatchEvent { At = Timestamp.FromDateTimeOffset(time.GetUtcNow()), Snapshot = snapshot }, stream.Token).ConfigureAwait(false);
        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(stream.Token).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(e, stream.Token).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException ex)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, ex.Message));
        }
        catch (OperationCanceledException) when (stream.IsCancellationRequested)
        {
            stream.ThrowIfRevoked(); // else the watcher went away or the coordinator stops
        }
    }
}
