using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Api;

/// <summary>
/// What agents call: reports, the command stream and command progress. Every call checks the caller's role for the
/// agent kind it claims (node-agent and log-shipper: the node role; builder: the builder role), that it acts only for
/// the node named in its certificate, and, for reports, its rate.
/// </summary>
public sealed class AgentApi(
    StateStore state,
    BuildQueue builds,
    CallerAuthorizer authorizer,
    ReportRateLimiter limiter,
    StreamRegistry streams,
    TimeProvider time,
    IOptions<State.StateOptions> options,
    Remediation.RemediationLeases remediation,
    ReportAdmission admission) : AgentService.AgentServiceBase
{
    private static readonly Counter Reports = Metrics.CreateCounter(
        "toolforge_coordinator_reports_total", "Reports accepted from agents.", "agent");
    private static readonly Counter Rejected = Metrics.CreateCounter(
        "toolforge_coordinator_reports_rejected_total", "Reports refused, by reason.", "reason");

    /// <summary>The roles that may act as <paramref name="kind"/>.</summary>
    public static Roles RolesFor(AgentKind kind) => kind switch
    {
        AgentKind.Builder => Roles.Builder,
        AgentKind.LogShipper => Roles.Node | Roles.Builder,
        _ => Roles.Node,
    };

    public override async Task<ReportResponse> Report(ReportRequest request, ServerCallContext context)
    {
        var caller = Authorize(context, request.Agent, request.Node, "report");
        if (!limiter.TryTake(caller.Identity, request.Agent, out var after))
        {
            Rejected.WithLabels("rate").Inc();
            throw authorizer.Refuse(context, caller, StatusCode.ResourceExhausted,
                $"more than {authorizer.Policy.Current.ReportRate:0.##} reports a second (burst {authorizer.Policy.Current.ReportBurst}) from {caller.Identity}; back off and report again",
                ReportAdmission.Hint(after));
        }

        if (ReportValidator.Validate(request) is { } problem)
        {
            Rejected.WithLabels("invalid").Inc();
            throw authorizer.Refuse(context, caller, StatusCode.InvalidArgument, problem);
        }

        if (!admission.TryEnter())
        {
            // Said once a minute by the admission, not per caller: in a storm every agent is refused alike.
            Rejected.WithLabels("in-flight").Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"the coordinator has {admission.Limit} reports waiting for its database (Coordinator:ReportsInFlight); nothing of this one was stored: send it again after the hint"),
                ReportAdmission.Hint(admission.Pushback(state.NodeCount, Random.Shared)));
        }

        try
        {
            request.Node = caller.Identity;
            ReportClock.Clamp(request, time.GetUtcNow(), TimeSpan.FromDays(options.Value.RetentionDays));
            try
            {
                await state.ApplyReportAsync(request, context.CancellationToken).ConfigureAwait(false);
            }
            catch (Storage.StoreConflictException)
            {
                // Other instances kept changing this node's state while this one decided (three times): nothing was stored.
                throw new RpcException(new Status(StatusCode.Aborted, "the node's state changed on another coordinator instance meanwhile; nothing was stored, send again"));
            }
        }
        finally
        {
            admission.Exit();
        }

        Reports.WithLabels(request.Agent.Name()).Inc();
        var response = new ReportResponse
        {
            HeartbeatInterval = Duration.FromTimeSpan(options.Value.HeartbeatInterval),
            ReceivedAt = Timestamp.FromDateTimeOffset(time.GetUtcNow()),
            ReconnectWindow = Duration.FromTimeSpan(admission.Window(state.NodeCount)),
        };
        response.Acknowledged.AddRange(state.AcknowledgedFor(request.Node, request.Agent));
        return response;
    }

    public override async Task ReceiveCommands(ReceiveCommandsRequest request, IServerStreamWriter<Command> responseStream, ServerCallContext context)
    {
        var caller = Authorize(context, request.Agent, request.Node, "receive commands");
        if (request.Agent != AgentKind.Builder)
        {
            // Only the builder takes commands: any other kind's stream would sit open for ever, receiving nothing.
            Rejected.WithLabels("invalid").Inc();
            throw authorizer.Refuse(context, caller, StatusCode.InvalidArgument, $"agent: only the builder receives commands, not {request.Agent.Name()}");
        }

        using var stream = streams.Open(context, caller, RolesFor(request.Agent));

        var connection = await builds.ConnectAsync(caller.Identity, request.Running).ConfigureAwait(false);
        state.SetCommandsConnected(caller.Identity, request.Agent, true);
        try
        {
            // The headers at once: the builder knows it is connected now, not when the first command comes (days, maybe).
            await context.WriteResponseHeadersAsync(new Metadata { { Common.Contracts.ContractNames.CommandsOpenHeader, "open" } }).ConfigureAwait(false);
            await foreach (var command in connection.Reader.ReadAllAsync(stream.Token).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(command, stream.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stream.IsCancellationRequested)
        {
            stream.ThrowIfRevoked(); // else the builder went away; queued builds wait for its return
        }
        finally
        {
            await builds.DisconnectAsync(connection).ConfigureAwait(false);
            state.SetCommandsConnected(caller.Identity, request.Agent, false);
        }
    }

    public override async Task<CommandProgressAck> ReportCommandProgress(CommandProgress request, ServerCallContext context)
    {
        var caller = Authorize(context, AgentKind.Builder, request.Node, "report build progress");
        if (request.LogLines.Count > ReportLimits.MaxLogLinesPerProgress || request.LogLines.Any(l => l.Length > ReportLimits.MaxLogLine))
        {
            throw authorizer.Refuse(context, caller, StatusCode.InvalidArgument,
                $"log_lines: at most {ReportLimits.MaxLogLinesPerProgress} lines of at most {ReportLimits.MaxLogLine} characters per call");
        }

        if (InventoryCheck.Problem(request) is { } inventoryProblem)
        {
            throw authorizer.Refuse(context, caller, StatusCode.InvalidArgument, inventoryProblem);
        }

        if (await builds.ProgressAsync(caller.Identity, request).ConfigureAwait(false) is { } refusal)
        {
            throw authorizer.Refuse(context, caller, refusal.Status, refusal.Message);
        }

        return new CommandProgressAck();
    }

    /// <summary>A node-agent's remediation lease, for its own node only: decided and stored before it is answered.</summary>
    public override async Task<RemediationLeaseResponse> RemediationLease(RemediationLeaseRequest request, ServerCallContext context)
    {
        var caller = Authorize(context, AgentKind.Node, request.Node, "ask for a remediation lease");
        if (LeaseRequestProblem(request) is { } problem)
        {
            throw authorizer.Refuse(context, caller, StatusCode.InvalidArgument, problem);
        }

        var ask = new Remediation.LeaseAsk(caller.Identity, request.Incident, request.Step, (long)request.Token, request.Release);
        var (pool, answer) = await remediation.AskAsync(ask, context.CancellationToken).ConfigureAwait(false);
        return new RemediationLeaseResponse
        {
            Granted = answer.Granted,
            Token = (ulong)answer.Token,
            ValidFor = Duration.FromTimeSpan(answer.ValidFor),
            Pool = pool,
            Refusal = answer.Refusal,
            RetryAfter = Duration.FromTimeSpan(answer.RetryAfter),
            Lost = answer.Lost,
            Ended = answer.Ended,
        };
    }

    /// <summary>Null when the request's strings are what the contract allows; else one line naming the field.</summary>
    public static string? LeaseRequestProblem(RemediationLeaseRequest r)
    {
        if (r.Incident.Length is 0 or > 64 || r.Incident.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-')))
        {
            return $"incident: 1-64 of A-Z a-z 0-9 . _ : - (got \"{Common.Cli.Output.Escape(Cut(r.Incident))}\")";
        }

        if (r.Step.Length is 0 or > 32 || r.Step.Any(c => !(char.IsAsciiLetterLower(c) || c == '-')))
        {
            return $"step: 1-32 of a-z and - (got \"{Common.Cli.Output.Escape(Cut(r.Step))}\")";
        }

        if (r.Token > long.MaxValue)
        {
            return $"token: {r.Token} is no token this coordinator handed out";
        }

        return r.Release && r.Token == 0 ? "release: give the token back that was granted (token 0 holds nothing)" : null;
    }

    private Caller Authorize(ServerCallContext context, AgentKind kind, string node, string action)
    {
        var needed = RolesFor(kind);
        var caller = authorizer.Require(context, needed, $"{action} as {kind.Name()}");
        if (!string.Equals(caller.Identity, node, StringComparison.OrdinalIgnoreCase))
        {
            Rejected.WithLabels("permission-denied").Inc();
            throw authorizer.Refuse(context, caller, StatusCode.PermissionDenied, $"certificate of {caller.Identity} may not {action} for node \"{Cut(node)}\"");
        }

        return caller;
    }

    private static string Cut(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
