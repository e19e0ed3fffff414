using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// Every Builder:Git:PollInterval: fetch, refuse a dirty or diverged checkout, fast-forward, and build what changed since the last commit built from git
/// (<see cref="GitCheckout.BuiltRef"/>); the whole poll takes its turn with the coordinator's builds
/// (<see cref="BuildLane"/>). A build that fails is not retried for the same commit: the next commit
/// retries it with its own changes (the images that did build are skipped as unchanged). The state is the check
/// "builder.git"; a problem (dirty checkout, remote unreachable) is one WRN line when it starts, INF when it ends.
/// </summary>
internal sealed partial class GitPollService(
    BuilderDocker docker,
    BuildLane lane,
    AgentState state,
    IOptions<BuilderOptions> builderOptions,
    IOptions<GitOptions> gitOptions,
    TimeProvider time,
    ILogger<GitPollService> logger,
    Promotion.PostPushVerifier? verifier = null,
    Inventory.PackageInventory? inventory = null) : BackgroundService
{
    public const string Check = "builder.git";

    private string? _problem;
    private string? _failedAt;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        state.Expect([Check]);
        var o = gitOptions.Value;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PollOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is GitException or RepositoryException or DockerOperationException or IOException)
            {
                Problem(ex.Message);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is not OperationCanceledException)
            {
                // Whatever else a commit can provoke must not stop the daemon (and its coordinator builds) in a loop:
                // said on the check and in the log, tried again at the next poll.
                Problem($"unexpected {ex.GetType().Name}: {ex.Message}");
            }

            try
            {
                await Task.Delay(o.PollInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// One poll: what the timer runs; returns when the build (if any) has finished. The whole poll holds the build lane:
    /// a fast-forward must not change the files under a coordinator's build of the same checkout.
    /// </summary>
    internal async Task PollOnceAsync(CancellationToken ct)
    {
        using (await lane.EnterAsync(ct).ConfigureAwait(false))
        {
            await PollHoldingTheLaneAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task PollHoldingTheLaneAsync(CancellationToken ct)
    {
        var b = builderOptions.Value;
        var o = gitOptions.Value;
        var checkout = new GitCheckout(o.Checkout.Length > 0 ? o.Checkout : b.Repository, o.Remote, o.Branch, o.CommandTimeout);
        var (held, notes) = await GitSync.BeginAsync(checkout, time, ct).ConfigureAwait(false);
        using var _ = held;
        foreach (var note in notes)
        {
            Log.Note(logger, note);
        }

        var update = await GitSync.UpdateAsync(checkout, null, ct).ConfigureAwait(false);
        Cleared();
        if (update.Since == update.After)
        {
            state.SetCheck(Check, CheckState.Ok, $"{checkout.Upstream} at {GitUpdate.Short(update.After)}: built");
            return;
        }

        if (update.After == _failedAt)
        {
            return; // said when it failed; a new commit retries
        }

        var naming = new NamingOptions(b.Registry, b.ImagePrefix, "testing");
        var session = BuildSession.Open(checkout.Path, naming);
        var selection = ChangeSelector.Select(update.Changed, session.Graph);
        if (selection.Images.Count == 0)
        {
            Log.NothingToBuild(logger, checkout.Upstream, GitUpdate.Short(update.After), GitUpdate.Short(update.Since), update.Changed.Count);
            await checkout.MarkBuiltAsync(update.After, ct).ConfigureAwait(false);
            state.SetCheck(Check, CheckState.Ok, $"{checkout.Upstream} at {GitUpdate.Short(update.After)}: nothing to build");
            return;
        }

        Log.Selected(logger, checkout.Upstream, GitUpdate.Short(update.After), selection.Images.Count, GitUpdate.Short(update.Since));
        foreach (var image in selection.Images)
        {
            Log.ImageSelected(logger, GitRunner.Safe(image.Path), GitRunner.Safe(image.Reason.ToString()));
        }

        state.SetCheck(Check, CheckState.Ok, $"{checkout.Upstream} at {GitUpdate.Short(update.After)}: building {selection.Images.Count} image(s)");
        var settings = new BuildSettings(naming, Push: o.Push, Jobs: b.Jobs, Source: new ImageSource(update.After, update.SourceUrl), Verifier: verifier?.For(naming), Inventory: inventory,
            TagHistory: Daemon.BuildQueueService.HistoryTagger(verifier, naming));
        var reports = await session.RunAsync(docker, selection.Paths, settings, new LogBuildLog(logger), ct).ConfigureAwait(false);

        var bad = reports.Where(r => !r.Ok).ToList();
        if (bad.Count == 0)
        {
            await checkout.MarkBuiltAsync(update.After, ct).ConfigureAwait(false);
            _failedAt = null;
            Log.Built(logger, reports.Count, GitUpdate.Short(update.After));
            state.SetCheck(Check, CheckState.Ok, $"{checkout.Upstream} at {GitUpdate.Short(update.After)}: built {reports.Count} image(s)");
        }
        else
        {
            _failedAt = update.After;
            var error = $"{bad.Count} of {reports.Count} image(s) failed or were skipped: {string.Join("; ", bad.Take(3).Select(r => $"{GitRunner.Safe(r.Path)} {r.Result}: {GitRunner.Safe(r.Error)}"))}";
            Log.BuildFailed(logger, GitUpdate.Short(update.After), error);
            state.SetCheck(Check, CheckState.Warning, $"build at {GitUpdate.Short(update.After)} failed: {error}");
        }
    }

    private void Problem(string message)
    {
        if (_problem != message)
        {
            Log.Problem(logger, message);
            _problem = message;
        }

        state.SetCheck(Check, CheckState.Warning, message);
    }

    private void Cleared()
    {
        if (_problem is { } was)
        {
            Log.ProblemCleared(logger, was);
            _problem = null;
        }
    }

    /// <summary>Each image's result as one log line; the build's own output at Debug.</summary>
    private sealed class LogBuildLog(ILogger logger) : IBuildLog
    {
        public void Line(string image, string text) => Log.BuildOutput(logger, image, text);

        public void Result(ImageReport report) => Log.ImageResult(logger, report.Path, report.Result, report.Digest, report.Error);
    }

    private static partial class Log
    {
        [LoggerMessage(4200, LogLevel.Information, "git: {Upstream} at {Commit}: {Count} image(s) to build (changes since {Since})")]
        public static partial void Selected(ILogger logger, string upstream, string commit, int count, string since);

        [LoggerMessage(4201, LogLevel.Information, "git: {Image}: {Reason}")]
        public static partial void ImageSelected(ILogger logger, string image, string reason);

        [LoggerMessage(4202, LogLevel.Information, "git: {Upstream} at {Commit}: nothing to build ({Paths} changed path(s) since {Since}, none used by an image)")]
        public static partial void NothingToBuild(ILogger logger, string upstream, string commit, string since, int paths);

        [LoggerMessage(4203, LogLevel.Information, "git: built {Count} image(s) at {Commit}")]
        public static partial void Built(ILogger logger, int count, string commit);

        [LoggerMessage(4204, LogLevel.Warning, "git: the build at {Commit} failed: {Error}; the next commit builds these changes again")]
        public static partial void BuildFailed(ILogger logger, string commit, string error);

        [LoggerMessage(4205, LogLevel.Warning, "git: {Problem}")]
        public static partial void Problem(ILogger logger, string problem);

        [LoggerMessage(4206, LogLevel.Information, "git: no longer: {Problem}")]
        public static partial void ProblemCleared(ILogger logger, string problem);

        [LoggerMessage(4207, LogLevel.Information, "git: {Image} {Result} {Digest} {Error}")]
        public static partial void ImageResult(ILogger logger, string image, string result, string digest, string error);

        [LoggerMessage(4208, LogLevel.Debug, "git: [{Image}] {Text}")]
        public static partial void BuildOutput(ILogger logger, string image, string text);

        [LoggerMessage(4209, LogLevel.Information, "git: {Note}")]
        public static partial void Note(ILogger logger, string note);
    }
}
