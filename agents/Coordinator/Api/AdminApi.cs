using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

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
    TimeProvider time,
    Remediation.RemediationLeases remediation,
    Storage.IStoreEngine store) : AdminService.AdminServiceBase
{
    /// <summary>Rows of <c>agentctl images --package</c>: the default and the most one call returns.</summary>
    private const int MaxImagePackages = 10_000;

    private const int DefaultFindingsLimit = 1000;
    private const int DefaultBuildsLimit = 50;

    /// <summary>The most nodes one message of a watch snapshot may carry (WatchRequest.snapshot_chunk).</summary>
    public const int MaxSnapshotChunk = 10_000;

    public override async Task<ListRemediationResponse> ListRemediation(ListRemediationRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list remediation");
        var response = new ListRemediationResponse();
        response.Pools.AddRange(await remediation.ListAsync(context.CancellationToken).ConfigureAwait(false));
        return response;
    }

    public override async Task<RemediationPoolInfo> ControlRemediation(ControlRemediationRequest request, ServerCallContext context)
    {
        var action = request.Action switch
        {
            RemediationAction.Pause => "remediation-pause",
            RemediationAction.Resume => "remediation-resume",
            RemediationAction.Cancel => "remediation-cancel",
            RemediationAction.ResetBreaker => "remediation-reset-breaker",
            _ => "remediation-control",
        };
        var target = ReportLimits.Cut(request.Target, 253);
        var caller = await RequireAdminAsync(context, action, "control remediation", $"target={target}").ConfigureAwait(false);
        var reason = ReportLimits.Cut(request.Reason.Trim(), ReportLimits.MaxMessage);
        string? problem = request.Action == RemediationAction.Unspecified ? "action: pause, resume, cancel or reset-breaker"
            : request.Target.Length == 0 ? "target: a pool's name or a node's"
            : reason.Length == 0 && request.Action is RemediationAction.Pause or RemediationAction.Cancel ? "reason: required (say why, for the audit log and the status)"
            : null;
        if (problem is not null)
        {
            await audit.WriteRefusedAsync(caller.Identity, action, "invalid", $"target={target} ({problem})").ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        AddAudit? entry = null;
        var (refusal, pool) = await remediation.ControlAsync(request.Action, target, caller.Identity, reason,
            what => entry = audit.Entry(caller.Identity, action, "accepted", $"{what} reason={reason}"), context.CancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            await audit.WriteRefusedAsync(caller.Identity, action, "refused", $"target={target} ({refusal})").ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.FailedPrecondition, refusal));
        }

        audit.Committed(entry!);
        return pool!;
    }

    public override Task<ListNodesResponse> ListNodes(ListNodesRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list nodes");
        if (request.Limit < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"limit must be 0 (all) or more (got {request.Limit})"));
        }

        var all = state.ListAllNodes(); // kept while nothing changed
        if (request.States.Count == 0 && request.Limit == 0 && request.ContinueToken.Length == 0 && request.NamePrefix.Length == 0)
        {
            return Task.FromResult(all);
        }

        var (after, problem) = NodePager.Read(request.ContinueToken);
        if (problem is not null)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        var (page, next) = NodePager.Page(all.Nodes, request.States, request.NamePrefix, request.Limit, after);
        var response = new ListNodesResponse { At = all.At, ContinueToken = next };
        response.Nodes.AddRange(page);
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
        response.Findings.AddRange(state.ListFindings(request.Node, request.Kind, request.Agent, limit, request.IncludeAcknowledged));
        return Task.FromResult(response);
    }

    public override Task<ListBuildsResponse> ListBuilds(ListBuildsRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list builds");
        var response = new ListBuildsResponse();
        response.Builds.AddRange(builds.List(request.Limit > 0 ? Math.Min(request.Limit, 10_000) : DefaultBuildsLimit));
        return Task.FromResult(response);
    }

    /// <summary>
    /// Issue 27: the pushed digests whose inventory holds Debian package <c>package</c> (at <c>version</c>, when given),
    /// newest first. Viewers and admins, as the other read verbs. With each digest, the nodes whose node-agent last said
    /// its runtime holds it (and of them, those with a container from it); <c>nodes_known</c> once any node-agent listed
    /// its images, and the node-agents that never did in <c>nodes_unreported</c>.
    /// </summary>
    public override async Task<ListImagePackagesResponse> ListImagePackages(ListImagePackagesRequest request, ServerCallContext context)
    {
        authorizer.Require(context, Roles.Viewer, "list image packages");
        if (Common.Contracts.LanguagePackages.QueryProblem(request.Package, request.Version.Length > 0 ? request.Version : null) is { } problem)
        {
            var name = Common.Contracts.LanguagePackages.QueryProblem(request.Package, null) is not null;
            throw new RpcException(new Status(StatusCode.InvalidArgument, (name ? "package: " : "version: ") + problem));
        }

        request.Package = Common.Contracts.LanguagePackages.NormalizeQualified(request.Package); // as stored: pypi:Django is pypi:django

        var limit = request.Limit > 0 ? Math.Min(request.Limit, MaxImagePackages) : MaxImagePackages;
        var rows = await Task.Run(() => store.FindImagePackages(request.Package, request.Version.Length > 0 ? request.Version : null, limit + 1), context.CancellationToken).ConfigureAwait(false);
        var kept = rows.Take(limit).ToList();
        var held = state.NodeImages(kept.Select(r => r.Digest).ToHashSet(StringComparer.Ordinal));
        var response = new ListImagePackagesResponse { NodesKnown = held.AnyReported, Truncated = rows.Count > limit };
        response.NodesUnreported.AddRange(held.Unreported.Take(100));
        foreach (var r in kept)
        {
            var match = new ImagePackageMatch
            {
                Repository = r.Repository,
                Digest = r.Digest,
                Path = r.Path,
                Package = r.Name,
                Version = r.Version,
                Architecture = r.Architecture,
                RecordedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(r.RecordedAtMs)),
            };
            match.Nodes.AddRange(held.Holding.GetValueOrDefault(r.Digest) ?? []);
            match.NodesInUse.AddRange(held.InUse.GetValueOrDefault(r.Digest) ?? []);
            response.Matches.Add(match);
        }

        return response;
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
        // Issue 27: a promotion (latest := the verified testing digest) travels as a build request with promote set,
        // audited as its own action.
        var promote = request.Build?.Promote == true;
        var prune = request.Build?.Prune;
        var action = prune is not null ? "request-prune" : promote ? "request-promote" : "request-build";
        var detail = ReportLimits.Cut(prune is not null
            ? $"images={string.Join(",", request.Build?.Images ?? [])} keep={prune.Keep} keep_days={prune.KeepDays} dry_run={prune.DryRun} builder={request.Builder}"
            : promote
            ? $"images={string.Join(",", request.Build?.Images ?? [])} all_verified={request.Build?.AllVerified} builder={request.Builder}"
            : $"images={string.Join(",", request.Build?.Images ?? [])} tag={request.Build?.Tag} push={request.Build?.Push} no_cache={request.Build?.NoCache} security_rebuild={request.Build?.SecurityRebuild} reason={Common.Cli.Output.Escape(ReportLimits.Cut(request.Build?.Reason ?? string.Empty, ImageResults.MaxReason))} builder={request.Builder}",
            ReportLimits.MaxMessage);
        try
        {
            authorizer.Require(context, Roles.Admin, prune is not null ? "prune the registry" : promote ? "promote images" : "request builds");
        }
        catch (RpcException)
        {
            await audit.WriteRefusedAsync(identity, action, "denied", detail).ConfigureAwait(false);
            throw;
        }

        if (BuildRequestValidator.Validate(request) is { } problem)
        {
            await audit.WriteRefusedAsync(identity, action, "invalid", $"{detail} ({problem})").ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        // Issue 27: a prune the coordinator already knows it could not protect is refused now, not queued (the builder
        // would refuse it anyway when it comes: the protection is taken again at the hand-over).
        if (prune is not null && state.ImageProtection() is { Refusal.Length: > 0 } unprotected)
        {
            var why = $"prune refused: {unprotected.Refusal}";
            await audit.WriteRefusedAsync(identity, action, "refused", $"{detail} ({why})").ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.FailedPrecondition, why));
        }

        var build = await builds.RequestAsync(identity, request).ConfigureAwait(false);
        await audit.WriteAsync(identity, action, "accepted", $"build={build.Id} {detail}").ConfigureAwait(false);
        return build;
    }

    /// <summary>The longest an acknowledgement may last: a finding hidden for longer should be fixed or its audit changed.</summary>
    public static readonly TimeSpan MaxAcknowledgement = TimeSpan.FromDays(30);

    public override async Task<ForgetNodeResponse> ForgetNode(ForgetNodeRequest request, ServerCallContext context)
    {
        var caller = await RequireAdminAsync(context, "forget-node", "forget nodes", $"node={ReportLimits.Cut(request.Name, 64)} force={request.Force}").ConfigureAwait(false);
        var reason = ReportLimits.Cut(request.Reason, ReportLimits.MaxMessage);
        try
        {
            AddAudit? entry = null;
            var summary = await state.ForgetAsync(request.Name, request.Force, s => entry = audit.Entry(caller.Identity, "forget-node", "accepted",
                $"node={s.Name} state={s.State.Name()} force={request.Force} reason={reason}"), context.CancellationToken).ConfigureAwait(false);
            audit.Committed(entry!);
            return new ForgetNodeResponse { Forgotten = summary };
        }
        catch (StateStore.LifecycleRefusal ex)
        {
            await audit.WriteRefusedAsync(caller.Identity, "forget-node", "refused", $"node={ReportLimits.Cut(request.Name, 64)} ({ex.Message})").ConfigureAwait(false);
            throw new RpcException(new Status(ex.Status, ex.Message));
        }
    }

    public override async Task<Finding> Acknowledge(AcknowledgeRequest request, ServerCallContext context)
    {
        var caller = await RequireAdminAsync(context, "acknowledge", "acknowledge findings", $"finding={ReportLimits.Cut(request.Id, 64)}").ConfigureAwait(false);
        var reason = ReportLimits.Cut(request.Reason.Trim(), ReportLimits.MaxMessage);
        var duration = request.Duration?.ToTimeSpan() ?? TimeSpan.Zero;
        string? problem = request.Id.Length == 0 ? "id: required (the ID column of agentctl findings)"
            : request.Remove ? null
            : reason.Length == 0 ? "reason: required (say why this finding may be left alone)"
            : duration <= TimeSpan.Zero ? "duration: must be more than 0"
            : duration > MaxAcknowledgement ? $"duration: at most {MaxAcknowledgement.TotalDays:0} days"
            : null;
        if (problem is not null)
        {
            await audit.WriteRefusedAsync(caller.Identity, "acknowledge", "invalid", $"finding={ReportLimits.Cut(request.Id, 64)} ({problem})").ConfigureAwait(false);
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        try
        {
            AddAudit? entry = null;
            var action = request.Remove ? "unacknowledge" : "acknowledge";
            var finding = await state.AcknowledgeAsync(request.Id, time.GetUtcNow() + duration, caller.Identity, reason, request.Remove,
                f => entry = audit.Entry(caller.Identity, action, "accepted",
                    $"finding={f.Id} node={f.Node} kind={f.Kind} subject={ReportLimits.Cut(f.Subject, 200)}{(request.Remove ? "" : $" for={duration}")} reason={reason}"),
                context.CancellationToken).ConfigureAwait(false);
            audit.Committed(entry!);
            return finding;
        }
        catch (StateStore.LifecycleRefusal ex)
        {
            await audit.WriteRefusedAsync(caller.Identity, "acknowledge", "refused", $"finding={ReportLimits.Cut(request.Id, 64)} ({ex.Message})").ConfigureAwait(false);
            throw new RpcException(new Status(ex.Status, ex.Message));
        }
    }

    public override async Task<Build> CancelBuild(CancelBuildRequest request, ServerCallContext context)
    {
        var caller = await RequireAdminAsync(context, "cancel-build", "cancel builds", $"build={ReportLimits.Cut(request.Id, 64)}").ConfigureAwait(false);
        var reason = ReportLimits.Cut(request.Reason.Trim(), ReportLimits.MaxMessage);
        try
        {
            AddAudit? entry = null;
            var build = await builds.CancelAsync(request.Id, caller.Identity, reason,
                b => entry = audit.Entry(caller.Identity, "cancel-build", "accepted", $"build={b.Id} state={b.State.Name()} reason={reason}")).ConfigureAwait(false);
            audit.Committed(entry!);
            return build;
        }
        catch (BuildQueue.CancelRefusal ex)
        {
            await audit.WriteRefusedAsync(caller.Identity, "cancel-build", "refused", $"build={ReportLimits.Cut(request.Id, 64)} ({ex.Message})").ConfigureAwait(false);
            throw new RpcException(new Status(ex.Status, ex.Message));
        }
    }

    // An admin action's caller: anyone else is refused (and the refusal audited, once a minute per caller).
    private async Task<Caller> RequireAdminAsync(ServerCallContext context, string action, string what, string detail)
    {
        var caller = authorizer.Identify(context);
        try
        {
            return authorizer.Require(context, Roles.Admin, what);
        }
        catch (RpcException)
        {
            await audit.WriteRefusedAsync(caller.Identity, action, "denied", detail).ConfigureAwait(false);
            throw;
        }
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
        if (request.SnapshotChunk is < 0 or > MaxSnapshotChunk)
        {
            throw authorizer.Refuse(context, caller, StatusCode.InvalidArgument,
                $"snapshot_chunk: must be between 0 (one message) and {MaxSnapshotChunk} nodes (got {request.SnapshotChunk})");
        }

        using var stream = streams.Open(context, caller, Roles.Viewer);
        // Resumed: the changes since the version the watcher last saw, each once, then the live ones; no snapshot.
        var (resumed, missed, whyNot) = request.ResumeFrom.Length > 0 ? feed.Resume(request.ResumeFrom) : (null, [], null);
        ChangeFeed.Subscription subscription;
        string? snapshotVersion = null;
        if (resumed is not null)
        {
            subscription = resumed;
        }
        else
        {
            // Subscribe before the snapshot: a change made meanwhile may arrive twice, never not at all.
            (subscription, snapshotVersion) = feed.SubscribeAt();
        }

        using var subscribed = subscription;
        try
        {
            if (snapshotVersion is not null)
            {
                // One list, sent in chunks when asked: the chunks together are the snapshot as it was at its version.
                var nodes = state.ListNodes();
                var chunk = request.SnapshotChunk > 0 ? request.SnapshotChunk : Math.Max(nodes.Count, 1);
                var at = Timestamp.FromDateTimeOffset(time.GetUtcNow());
                for (var from = 0; from == 0 || from < nodes.Count; from += chunk)
                {
                    var last = from + chunk >= nodes.Count;
                    var snapshot = new Snapshot { Continued = !last };
                    snapshot.Nodes.AddRange(nodes.Skip(from).Take(chunk));
                    if (from == 0)
                    {
                        snapshot.Builds.AddRange(builds.List(DefaultBuildsLimit));
                    }

                    await responseStream.WriteAsync(new WatchEvent
                    {
                        At = at,
                        Snapshot = snapshot,
                        Version = last ? snapshotVersion : string.Empty,
                        ResyncReason = from == 0 ? whyNot ?? string.Empty : string.Empty,
                    }, stream.Token).ConfigureAwait(false);
                }
            }

            foreach (var e in missed)
            {
                await responseStream.WriteAsync(e, stream.Token).ConfigureAwait(false);
            }

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
