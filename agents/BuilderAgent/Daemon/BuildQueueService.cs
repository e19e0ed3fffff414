using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Common.Resilience;

namespace Toolforge.Agents.BuilderAgent.Daemon;

/// <summary>
/// Receives build requests on the coordinator's command stream (reconnecting with backoff), runs them one at a
/// time, and streams log lines and per-image results back. A request seen before (re-sent after a reconnect) is not
/// run twice.
/// </summary>
internal sealed partial class BuildQueueService(
    CoordinatorConnection connection,
    BuilderDocker docker,
    BuildLane lane,
    AgentState state,
    IOptions<BuilderOptions> options,
    TimeProvider time,
    ILogger<BuildQueueService> logger,
    Promotion.PostPushVerifier? verifier = null,
    Inventory.PackageInventory? inventory = null,
    IOptions<Git.GitOptions>? git = null) : BackgroundService
{
    /// <summary>Between attempts to open the command stream again: 1 s doubling, at most 30 s.</summary>
    private static readonly RetryBounds Reconnect = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(30));

    private static readonly Counter Builds = Metrics.CreateCounter("toolforge_builder_builds_total", "Builds run for the coordinator, by result.", "result");
    private static readonly Counter CommandCrashed = Metrics.CreateCounter("toolforge_builder_command_crashes_total", "Commands that ended with an unexpected error (a bug); the builder went on with the next.");
    private static readonly Gauge Queued = Metrics.CreateGauge("toolforge_builder_queue_length", "Build requests waiting.");

    private const int MaxImagesPerRequest = 200;

    private readonly Channel<Command> _queue = Channel.CreateUnbounded<Command>();
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly HashSet<string> _active = new(StringComparer.Ordinal); // queued or running here
    private readonly Dictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal); // under _seen
    private readonly Dictionary<string, CancelBuild> _cancelled = new(StringComparer.Ordinal); // asked to stop (under _seen)
    private readonly Dictionary<string, long> _arrived = new(StringComparer.Ordinal); // Stopwatch timestamp of each queued command's arrival (under _seen)
    private const int MaxRememberedCancels = 1000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!connection.Enabled)
        {
            Log.NoCoordinator(logger);
            state.SetCheck("builder.commands", CheckState.Warning, "no Coordinator:Address configured: not taking build requests");
            return;
        }

        var worker = Task.Run(() => WorkAsync(stoppingToken), stoppingToken);
        // One line when the stream is lost (a failure also warns on the check; the coordinator ending it as it stops is
        // only said), one when a command comes through it again.
        var streak = new RetryStreak(Reconnect, time,
            (ex, _) =>
            {
                var r = (RpcException)ex;
                Log.StreamFailed(logger, r.StatusCode, r.Status.Detail);
                state.SetCheck("builder.commands", CheckState.Warning, $"command stream: {r.StatusCode}: {r.Status.Detail}");
            },
            (failures, length) => Log.StreamBack(logger, failures, length.TotalSeconds));
        while (!stoppingToken.IsCancellationRequested)
        {
            RpcException lost;
            try
            {
                var hello = new ReceiveCommandsRequest { Node = connection.Node, Agent = AgentKind.Builder, AgentVersion = DaemonInfo.Version };
                lock (_seen)
                {
                    hello.Running.AddRange(_active);
                }

                using var call = connection.AgentClient().ReceiveCommands(hello, cancellationToken: stoppingToken);

                // The coordinator answers the stream's opening at once with its marker header: connected from here, not
                // only once a command comes (that could be days). A refusal comes without it (trailers only, which
                // ResponseHeadersAsync does not throw for): then the read below throws and the streak goes on.
                var headers = await call.ResponseHeadersAsync.ConfigureAwait(false);
                if (headers.GetValue(ContractNames.CommandsOpenHeader) == "open")
                {
                    streak.Succeeded();
                    state.SetCheck("builder.commands", CheckState.Ok, "connected to the coordinator's command stream");
                }
                await foreach (var command in call.ResponseStream.ReadAllAsync(stoppingToken).ConfigureAwait(false))
                {
                    if (command.BodyCase == Command.BodyOneofCase.Cancel)
                    {
                        Cancel(command);
                        continue;
                    }

                    lock (_seen)
                    {
                        if (!_seen.Add(command.Id))
                        {
                            continue;
                        }

                        _active.Add(command.Id);
                        _arrived[command.Id] = Stopwatch.GetTimestamp();
                    }

                    Log.Received(logger, command.BuildId, command.RequestedBy);
                    Queued.Inc();
                    await _queue.Writer.WriteAsync(command, stoppingToken).ConfigureAwait(false);
                }

                // The coordinator ended the stream (it is stopping): said, not a failure; back after the first wait.
                Log.StreamEnded(logger);
                if (!await streak.WaitAsync(Reconnect.Initial, stoppingToken).ConfigureAwait(false))
                {
                    break;
                }

                continue;
            }
            catch (RpcException ex) when (!stoppingToken.IsCancellationRequested)
            {
                connection.Failed(ex.StatusCode);
                lost = ex;
            }
            catch (Exception ex) when (stoppingToken.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                break; // stopping: the stream was cancelled
            }

            // The stream ended (the coordinator restarted, or refused us): come back after a jittered while.
            if (!await streak.FailedAndWaitAsync(lost, stoppingToken).ConfigureAwait(false))
            {
                break; // stopping during the wait: as when the stream is cancelled
            }
        }

        _queue.Writer.TryComplete();
        await worker.ConfigureAwait(false);
    }

    /// <summary>
    /// An admin asked a build handed to us to stop: the running one is cancelled (its docker calls end), a queued one is
    /// not started; either way the coordinator hears CANCELLED. One we no longer hold (finished) is left as it ended.
    /// </summary>
    private void Cancel(Command command)
    {
        CancellationTokenSource? running;
        lock (_seen)
        {
            if (!_active.Contains(command.Id) && _seen.Contains(command.Id))
            {
                Log.CancelIgnored(logger, command.BuildId); // ran here and ended
                return;
            }

            // Running, waiting here, or not received yet (its command may come after this): remembered, a bounded few
            // (past the bound, one not queued here is forgotten: any, the dictionary keeps no order).
            if (!_cancelled.ContainsKey(command.Id) && _cancelled.Count >= MaxRememberedCancels
                && _cancelled.Keys.FirstOrDefault(k => !_active.Contains(k)) is { } oldest)
            {
                _cancelled.Remove(oldest);
            }

            _cancelled[command.Id] = command.Cancel;
            _running.TryGetValue(command.Id, out running);
        }

        Log.CancelReceived(logger, command.BuildId, command.Cancel.RequestedBy);
        running?.Cancel();
    }

    private CancelBuild? CancelledOf(string id)
    {
        lock (_seen)
        {
            return _cancelled.GetValueOrDefault(id);
        }
    }

    // A build an admin cancelled ends here: its log says who and why, the coordinator hears CANCELLED, and the builder's
    // last-build check and counter say so.
    private void EndCancelled(Command command, ProgressSender progress, CancelBuild asked, string how)
    {
        progress.Line("*", $"{CancelMessage(asked)}; {how}");
        progress.State(BuildState.Cancelled, CancelMessage(asked));
        Builds.WithLabels("cancelled").Inc();
        state.SetCheck("builder.last-build", CheckState.Ok, $"build {command.BuildId} cancelled ({how})");
        Log.Finished(logger, command.BuildId, $"cancelled ({how})");
    }

    private static string CancelMessage(CancelBuild c) =>
        $"cancelled by {OutputEscape(c.RequestedBy)}" + (c.Reason.Length > 0 ? $": {OutputEscape(c.Reason)}" : string.Empty);

    private static string OutputEscape(string s) => Toolforge.Agents.Common.Cli.Output.Escape(s.Length > 500 ? s[..500] : s);

    private async Task WorkAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var command in _queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                Queued.Dec();
                try
                {
                    if (command.BodyCase == Command.BodyOneofCase.Build)
                    {
                        await RunBuildAsync(command, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        Log.UnknownCommand(logger, command.BuildId, command.BodyCase.ToString());
                    }
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    // One command's bug must not end the loop: the builder would stay connected and run nothing more.
                    CommandCrashed.Inc();
                    Log.CommandCrashed(logger, command.BuildId, ex);
                    state.SetCheck("builder.last-build", CheckState.Failing, $"build {command.BuildId} ended with an unexpected error: {ex.GetType().Name}: {ex.Message}");
                }
                finally
                {
                    lock (_seen)
                    {
                        _active.Remove(command.Id);
                        _cancelled.Remove(command.Id);
                        _arrived.Remove(command.Id);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // shutting down; a build in progress is reported failed by the coordinator when we reconnect
        }
    }

    // The commit the repository's working tree is exactly (Git.CheckoutRevision: judged without running anything the
    // checkout's configuration names): the images built carry it as their revision label, and their results take it to
    // the coordinator. Otherwise null, said in the build's log.
    private async Task<Build.ImageSource?> CheckoutSourceAsync(BuilderOptions o, ProgressSender progress, CancellationToken ct)
    {
        var g = git?.Value ?? new Git.GitOptions();
        progress.Line("*", $"reading the commit of {OutputEscape(o.Repository)}");
        var judged = await Git.CheckoutRevision.JudgeAsync(o.Repository, g.Remote, g.Branch, ct).ConfigureAwait(false);
        progress.Line("*", judged.Source is { } source
            ? $"building {OutputEscape(o.Repository)} at commit {source.Revision}"
            : $"the images carry no revision: {OutputEscape(judged.Why ?? "not known")}");
        return judged.Source;
    }

    /// <summary>
    /// The coordinator is not trusted with what reaches a Dockerfile: the tag is checked again here, the number of
    /// images is bounded, and every image must be one of this repository's (Select refuses any other path).
    /// </summary>
    internal static (BuildSession Session, IReadOnlyList<string> Order) Accept(BuildRequest request, BuilderOptions o)
    {
        var tag = request.Tag.Length > 0 ? request.Tag : "testing";
        if (NamingOptions.TagProblem(tag) is { } tagProblem)
        {
            throw new RepositoryException($"build request refused: tag {tagProblem}");
        }

        if (tag == Promotion.TagPolicy.Latest)
        {
            throw new RepositoryException($"build request refused: tag {Promotion.TagPolicy.Latest} comes only from promotion of a verified {Promotion.TagPolicy.Testing} digest (agentctl promote); builds push {Promotion.TagPolicy.Testing}");
        }

        if (request.Images.Count is > MaxImagesPerRequest || (request.Images.Count == 0 && !request.SecurityRebuild))
        {
            throw new RepositoryException($"build request refused: {request.Images.Count} images (1 to {MaxImagesPerRequest})");
        }

        if (request.SecurityRebuild && (request.Promote || request.Prune is not null || request.Single || tag != Promotion.TagPolicy.Testing))
        {
            throw new RepositoryException($"build request refused: a security rebuild pushes {Promotion.TagPolicy.Testing} and builds whole lineages");
        }

        var session = BuildSession.Open(o.Repository, new NamingOptions(o.Registry, o.ImagePrefix, tag));
        if (request.Images.Count == 0)
        {
            return (session, session.Graph.TopologicalOrder(session.Graph.Images.Select(i => i.Path).ToHashSet(StringComparer.Ordinal))); // every image of the tree
        }

        var order = session.Select(request.Images, request.Single);
        if (!request.SecurityRebuild)
        {
            return (session, order);
        }

        // A security rebuild rebuilds whatever builds on what it rebuilds: an ancestor of a named image that is pushed
        // must not leave its other children on the old one.
        var all = order.ToHashSet(StringComparer.Ordinal);
        foreach (var path in order)
        {
            all.UnionWith(session.Graph.Descendants(path));
        }

        return (session, session.Graph.TopologicalOrder(all));
    }

    private async Task RunBuildAsync(Command command, CancellationToken stoppingToken)
    {
        var request = command.Build;
        var o = options.Value;
        await using var progress = new ProgressSender(connection, command.Id, command.BuildId, time, logger);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        CancelBuild? before;
        lock (_seen)
        {
            // One step: a cancel arriving now either is seen here or finds the build registered as running.
            before = _cancelled.GetValueOrDefault(command.Id);
            if (before is null)
            {
                _running[command.Id] = cancel;
            }
        }

        if (before is not null)
        {
            EndCancelled(command, progress, before, "not started"); // asked to stop before it started: nothing is built
            return;
        }

        try
        {
            await RunStartedAsync(command, request, o, progress, cancel.Token, stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_seen)
            {
                _running.Remove(command.Id);
            }
        }
    }

    private async Task RunStartedAsync(Command command, BuildRequest request, BuilderOptions o, ProgressSender progress, CancellationToken ct, CancellationToken stoppingToken)
    {
        progress.State(BuildState.Running);
        if (request.Prune is not null || request.Promote)
        {
            try
            {
                await (request.Prune is not null ? RunPruneAsync(command, request, o, progress, ct) : RunPromotionAsync(command, request, o, progress, ct)).ConfigureAwait(false);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ct.IsCancellationRequested && CancelledOf(command.Id) is { } asked
                && ex is OperationCanceledException or IOException or HttpRequestException)
            {
                EndCancelled(command, progress, asked, "stopped"); // the registry calls done stay done (manifests copied, digests deleted), the rest was not
            }

            return;
        }

        progress.Line("*", request.SecurityRebuild
            ? $"security rebuild requested by {OutputEscape(command.RequestedBy)}{(request.Reason.Length > 0 ? $" ({OutputEscape(request.Reason)})" : string.Empty)}: "
                + $"{(request.Images.Count == 0 ? "every image of the tree" : $"the lineages of {request.Images.Count} image(s)")}, without the cache; an image is pushed only when its packages changed or its parent was pushed"
            : $"build requested by {OutputEscape(command.RequestedBy)}: {request.Images.Count} image(s), push={request.Push} no_cache={request.NoCache}{(request.Reason.Length > 0 ? $" ({OutputEscape(request.Reason)})" : string.Empty)}");
        string? error = null;
        IReadOnlyList<ImageReport> reports = [];
        try
        {
            // One build at a time with the git poll, from reading the repository on: its fast-forward must wait.
            using (await lane.EnterAsync(ct).ConfigureAwait(false))
            {
                var (session, order) = Accept(request, o);
                var source = await CheckoutSourceAsync(o, progress, ct).ConfigureAwait(false); // after the templates were read: an edit that stays is seen
                var security = request.SecurityRebuild;
                var gate = !security ? null
                    : verifier?.Gate(session.Naming) ?? throw new RepositoryException("this builder does not do security rebuilds (no Builder:Promotion wiring: it reads testing from the registry)");
                var settings = new BuildSettings(session.Naming, request.Push || security, request.NoCache || security, Pull: false, request.Force || security, PushSuccessful: security, o.Jobs,
                    Verifier: verifier?.For(session.Naming), Inventory: inventory, TagHistory: HistoryTagger(verifier, session.Naming), Gate: gate, Source: source);
                reports = await session.RunAsync(docker, order, settings, progress, ct).ConfigureAwait(false);
            }

            foreach (var line in BuildSession.Summary(reports).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                progress.Line("*", line);
            }

            var bad = reports.Where(r => !r.Ok).ToList();
            if (bad.Count > 0)
            {
                error = $"{bad.Count} of {reports.Count} image(s) failed or were skipped: {string.Join("; ", bad.Take(3).Select(b => $"{b.Path} {b.Result}: {b.Error}"))}";
            }
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ct.IsCancellationRequested && CancelledOf(command.Id) is { } asked
            && ex is OperationCanceledException or DockerOperationException or IOException or HttpRequestException)
        {
            EndCancelled(command, progress, asked, "stopped"); // the docker calls ended: what was built stays built, the rest was not
            return;
        }
        catch (Exception ex) when (ex is RepositoryException or DockerOperationException or IOException)
        {
            error = ex.Message;
            progress.Line("*", "ERROR: " + ex.Message);
        }

        if (error is not null && !stoppingToken.IsCancellationRequested && ct.IsCancellationRequested && CancelledOf(command.Id) is { } stopped)
        {
            EndCancelled(command, progress, stopped, "stopped"); // the docker calls ended on it and were reported as image failures
            return;
        }

        End(command, progress, error, $"build {command.BuildId}", $"{reports.Count} images");
    }

    /// <summary>
    /// A promotion through the coordinator (issue 27: there, latest comes only from this): for each image, latest is
    /// pointed at its verified testing digest by copying the manifest; each image's result is "promoted" (with the
    /// digest) or "refused" (with why); the request fails when any image was refused. Nothing is built.
    /// </summary>
    private async Task RunPromotionAsync(Command command, BuildRequest request, BuilderOptions o, ProgressSender progress, CancellationToken ct)
    {
        progress.Line("*", $"promotion requested by {command.RequestedBy}: {(request.AllVerified ? "every image whose last verify passed" : $"{request.Images.Count} image(s)")}");
        string? error = null;
        var count = 0;
        try
        {
            if (verifier is null)
            {
                throw new RepositoryException("this builder does not promote (no Builder:Promotion wiring)");
            }

            var naming = new NamingOptions(o.Registry, o.ImagePrefix, Promotion.TagPolicy.Testing);
            var promoter = verifier.Promoter(naming);
            IReadOnlyList<string> paths;
            using (await lane.EnterAsync(ct).ConfigureAwait(false))
            {
                var graph = BuildSession.Open(o.Repository, naming).Graph;
                paths = request.AllVerified ? promoter.Verified(graph) : request.Images.Select(BuildSession.Normalize).ToList();
                if (paths.Count > MaxImagesPerRequest)
                {
                    throw new RepositoryException($"promotion refused: {paths.Count} images (at most {MaxImagesPerRequest})");
                }

                foreach (var p in paths.Where(p => graph.Images.All(i => i.Path != p)))
                {
                    throw new RepositoryException($"promotion refused: {Promotion.RegistryClient.Safe(p)} is not an image of the repository");
                }
            }

            count = paths.Count;
            if (count == 0)
            {
                progress.Line("*", "nothing to promote: no image's last verify passed");
            }

            var refused = 0;
            foreach (var path in paths)
            {
                var sw = Stopwatch.StartNew();
                var r = await promoter.PromoteAsync(path, ct).ConfigureAwait(false);
                refused += r.Ok ? 0 : 1;
                progress.Line(path, r.Ok ? $"promoted: {r.Detail}" : $"REFUSED: {r.Detail}");
                progress.Result(new ImageReport(path, $"{r.Repository}:{Promotion.TagPolicy.Latest}", r.Ok ? "promoted" : "refused", sw.Elapsed, r.Digest, r.Ok ? string.Empty : r.Detail));
            }

            if (refused > 0)
            {
                error = $"{refused} of {count} image(s) not promoted";
            }
        }
        catch (Exception ex) when (ex is RepositoryException or Promotion.PromotionException or IOException or UnauthorizedAccessException)
        {
            error = ex.Message;
            progress.Line("*", "ERROR: " + ex.Message);
        }

        End(command, progress, error, $"promotion {command.BuildId}", $"{count} images");
    }

    // How every command that ran ends: its final state to the coordinator, the counter, the builder.last-build check, a line.
    private void End(Command command, ProgressSender progress, string? error, string what, string done)
    {
        progress.State(error is null ? BuildState.Succeeded : BuildState.Failed, error);
        Builds.WithLabels(error is null ? "succeeded" : "failed").Inc();
        state.SetCheck("builder.last-build", error is null ? CheckState.Ok : CheckState.Warning, error is null ? $"{what} succeeded ({done})" : $"{what} failed: {error}");
        Log.Finished(logger, command.BuildId, error ?? "succeeded");
    }

    /// <summary>The history tagger of the daemon's pushes of testing to its registry (null otherwise: nothing is tagged).</summary>
    internal static Func<string, string, CancellationToken, Task<string>>? HistoryTagger(Promotion.PostPushVerifier? verifier, NamingOptions naming) =>
        verifier?.For(naming) is null ? null : (path, digest, ct) => verifier.TagHistoryAsync(naming, path, digest, ct);

    /// <summary>The oldest protection a prune acts on: the nodes' lists as the coordinator had them when it handed the prune over.</summary>
    internal static readonly TimeSpan MaxProtectionAge = TimeSpan.FromMinutes(15);

    /// <summary>
    /// A prune through the coordinator (issue 27): old digests of the images' repositories (every image of the tree
    /// when none is named) are deleted from the registry, never one a node holds or uses (Command.protection), one a
    /// kept tag names, testing or latest. Refused whole, deleting nothing, when the coordinator sent no protection, said
    /// it could not protect, or its protection is older than <see cref="MaxProtectionAge"/> (the prune waited here).
    /// Each repository is an image result: "pruned" / "would-prune" with what it did, or "prune-failed".
    /// </summary>
    private async Task RunPruneAsync(Command command, BuildRequest request, BuilderOptions o, ProgressSender progress, CancellationToken ct)
    {
        var prune = request.Prune;
        progress.Line("*", $"{(prune.DryRun ? "dry run of a prune" : "prune")} requested by {OutputEscape(command.RequestedBy)}: keep the newest {prune.Keep} history tag(s) per repository, "
            + $"{(request.Images.Count == 0 ? "every image of the tree" : $"{request.Images.Count} image(s)")}");
        string? error = null;
        var count = 0;
        try
        {
            if (verifier is null)
            {
                throw new RepositoryException("this builder does not prune (no Builder:Promotion wiring)");
            }

            long arrived;
            lock (_seen)
            {
                arrived = _arrived.GetValueOrDefault(command.Id, Stopwatch.GetTimestamp());
            }

            // Judged whole once; then (after the lane, before each deletion) only its age.
            string? StillValid() => ProtectionProblem(command.Protection, time.GetUtcNow(), Stopwatch.GetElapsedTime(arrived), entries: false);
            if (prune.Keep < 1 || prune.Keep > ImageResults.MaxKeep || !double.IsFinite(prune.KeepDays) || prune.KeepDays < 0 || prune.KeepDays > ImageResults.MaxKeepDays)
            {
                throw new RepositoryException($"prune refused: keep {prune.Keep} (1 to {ImageResults.MaxKeep}) and keep_days {prune.KeepDays} (0 to {ImageResults.MaxKeepDays})");
            }

            if (ProtectionProblem(command.Protection, time.GetUtcNow(), Stopwatch.GetElapsedTime(arrived)) is { } problem)
            {
                throw new RepositoryException($"prune refused, nothing deleted: {problem}");
            }

            var protection = command.Protection;
            var protectedDigests = protection!.Digests.ToHashSet(StringComparer.Ordinal);
            var oldest = protection.OldestList is { } ol ? $", the oldest listed {(time.GetUtcNow() - ol.ToDateTimeOffset()).TotalMinutes:0} min ago" : string.Empty;
            var said = $"none of the {protection.Nodes} node(s) whose lists the coordinator had ({protectedDigests.Count} digest(s) held or used{oldest})";
            progress.Line("*", $"the nodes hold or use {protectedDigests.Count} distinct digest(s) ({protection.Nodes} node(s){oldest}); none of them is deleted");
            var naming = new NamingOptions(o.Registry, o.ImagePrefix, Promotion.TagPolicy.Testing);
            IReadOnlyList<string> paths;
            using (await lane.EnterAsync(ct).ConfigureAwait(false))
            {
                var graph = BuildSession.Open(o.Repository, naming).Graph;
                paths = request.Images.Count == 0 ? graph.Images.Select(i => i.Path).ToList() : request.Images.Select(BuildSession.Normalize).ToList();
                foreach (var p in paths.Where(p => graph.Images.All(i => i.Path != p)))
                {
                    throw new RepositoryException($"prune refused: {Promotion.RegistryClient.Safe(p)} is not an image of the repository");
                }

                // One prune at a time with builds and the git poll: nothing of ours moves a tag while it reads and deletes.
                // The lane may have been held long (a poll and its build): what the nodes hold is judged again here,
                // and before each deletion.
                if (StillValid() is { } waited)
                {
                    throw new RepositoryException($"prune refused, nothing deleted: {waited}");
                }

                var youngerThan = prune.KeepDays > 0 ? time.GetUtcNow() - TimeSpan.FromDays(prune.KeepDays) : (DateTimeOffset?)null;
                var pruner = verifier.Pruner();
                var failed = 0;
                foreach (var path in paths.Distinct(StringComparer.Ordinal))
                {
                    count++;
                    var sw = Stopwatch.StartNew();
                    var repository = Promotion.ImageVerifier.Repository(naming, path);
                    var r = await pruner.PruneAsync(repository, Promotion.ImageVerifier.NameInRegistry(naming, path), prune.Keep, protectedDigests, said, prune.DryRun,
                        line =>
                        {
                            Log.PruneLine(logger, command.BuildId, path, line); // in the journal too, before the registry is asked
                            progress.Line(path, line);
                        }, ct, youngerThan, StillValid).ConfigureAwait(false);
                    failed += r.Error is null ? 0 : 1;
                    var summary = r.Plan is not { } plan ? string.Empty
                        : prune.DryRun ? $"would delete {plan.Deletions.Count} digest(s); {plan.Spared.Count} old tag(s) spared"
                        : $"deleted {r.Deleted.Count} of {plan.Deletions.Count} digest(s); {plan.Spared.Count} old tag(s) spared";
                    progress.Result(new ImageReport(path, repository, r.Error is not null ? "prune-failed" : prune.DryRun ? "would-prune" : "pruned", sw.Elapsed, string.Empty,
                        r.Error ?? summary) { Deleted = r.Deleted });
                    if (r.Error is not null && count < paths.Count)
                    {
                        // A registry that is down would cost every repository its timeouts while the lane is held.
                        progress.Line("*", $"the prune stops at the first repository that failed; {paths.Count - count} repository(ies) not looked at (name them to prune them)");
                        break;
                    }
                }

                if (failed > 0)
                {
                    error = $"{failed} of {count} repository(ies) not pruned";
                }
            }
        }
        catch (Exception ex) when (ex is RepositoryException or Promotion.PromotionException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            error = ex.Message;
            progress.Line("*", "ERROR: " + ex.Message);
        }

        End(command, progress, error, $"prune {command.BuildId}", $"{count} repositories");
    }

    /// <summary>How far ahead of this builder's clock the coordinator's taken_at may be (clocks apart) before it is refused.</summary>
    internal static readonly TimeSpan MaxClockAhead = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Why a prune may not act on <paramref name="protection"/> now, or null: none sent (an older coordinator), the
    /// coordinator's refusal, a list older than <see cref="MaxProtectionAge"/> by this builder's clock or by the time the
    /// command has waited here (whichever is longer: a clock behind cannot make an old list young), a taken_at ahead of
    /// this clock by more than <see cref="MaxClockAhead"/>, an entry that is not a digest.
    /// </summary>
    internal static string? ProtectionProblem(ImageProtection? protection, DateTimeOffset now, TimeSpan waitedHere, bool entries = true)
    {
        if (protection is null)
        {
            return "the coordinator sent no list of what the nodes hold (an older coordinator?)";
        }

        if (protection.Refusal.Length > 0)
        {
            return OutputEscape(protection.Refusal);
        }

        if (protection.TakenAt is null)
        {
            return "the coordinator's list of what the nodes hold has no time";
        }

        var byClock = now - protection.TakenAt.ToDateTimeOffset();
        if (byClock < -MaxClockAhead)
        {
            return $"the coordinator took what the nodes hold {(-byClock).TotalMinutes:0} min ahead of this builder's clock: set the clocks right";
        }

        var age = byClock > waitedHere ? byClock : waitedHere;
        if (age > MaxProtectionAge)
        {
            return $"what the nodes hold was taken {age.TotalMinutes:0} min ago (the prune waited behind other work; at most {MaxProtectionAge.TotalMinutes:0} min): ask again";
        }

        return entries && protection.Digests.FirstOrDefault(d => !NodeImageNames.IsImageId(d)) is { } bad
            ? $"the coordinator's list holds \"{OutputEscape(bad)}\", not a digest"
            : null;
    }

    private static partial class Log
    {
        [LoggerMessage(4018, LogLevel.Information, "prune {Id} [{Path}] {Line}")]
        public static partial void PruneLine(ILogger logger, string id, string path, string line);

        [LoggerMessage(4001, LogLevel.Warning, "no Coordinator:Address configured: serve takes no build requests")]
        public static partial void NoCoordinator(ILogger logger);

        [LoggerMessage(4002, LogLevel.Information, "build {Id} received (requested by {Identity})")]
        public static partial void Received(ILogger logger, string id, string identity);

        [LoggerMessage(4003, LogLevel.Warning, "command stream to the coordinator failed: {Status}: {Detail}; reconnecting")]
        public static partial void StreamFailed(ILogger logger, StatusCode status, string detail);

        [LoggerMessage(4011, LogLevel.Information, "command stream to the coordinator is back after {Failures} failed attempts ({Seconds:0.#} s)")]
        public static partial void StreamBack(ILogger logger, int failures, double seconds);

        [LoggerMessage(4012, LogLevel.Information, "the coordinator ended the command stream (it is stopping or restarting); reconnecting")]
        public static partial void StreamEnded(ILogger logger);

        [LoggerMessage(4013, LogLevel.Error, "build {Id} ended with an unexpected error (a bug); the builder goes on with the next command")]
        public static partial void CommandCrashed(ILogger logger, string id, Exception ex);

        [LoggerMessage(4004, LogLevel.Warning, "command {Id} of kind {Kind} is not something this builder does")]
        public static partial void UnknownCommand(ILogger logger, string id, string kind);

        [LoggerMessage(4009, LogLevel.Information, "build {Id}: asked to stop by {By}")]
        public static partial void CancelReceived(ILogger logger, string id, string by);

        [LoggerMessage(4010, LogLevel.Information, "build {Id}: asked to stop, but it is not queued or running here (it ended already)")]
        public static partial void CancelIgnored(ILogger logger, string id);

        [LoggerMessage(4005, LogLevel.Information, "build {Id} finished: {Outcome}")]
        public static partial void Finished(ILogger logger, string id, string outcome);
    }
}
