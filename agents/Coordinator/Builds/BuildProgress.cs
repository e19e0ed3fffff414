using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// Decides what a builder's progress does to a build, as stored: refused (and why), nothing to do (the final state
/// sent again after its answer was lost), or the build as it is after the change. No I/O and no mutation of the
/// build handed in; the caller stores the result and only then shows it.
/// </summary>
internal static class BuildProgress
{
    /// <summary>Exactly one of: <see cref="Refusal"/>, <see cref="AlreadyDone"/>, or <see cref="Next"/> (possibly equal to the build).</summary>
    public sealed record Decision(BuildQueue.Refusal? Refusal, Build? Next)
    {
        public bool AlreadyDone => Refusal is null && Next is null;
    }

    /// <summary>Progress naming a state a builder never reports is refused before anything is looked up.</summary>
    public static BuildQueue.Refusal? CheckState(CommandProgress progress) =>
        progress.State is BuildState.Unspecified or BuildState.Running or BuildState.Succeeded or BuildState.Failed or BuildState.Cancelled
            ? null
            : new BuildQueue.Refusal(StatusCode.InvalidArgument, $"state: {progress.State} is not something a builder reports");

    public static Decision Apply(Build build, string caller, CommandProgress progress, Timestamp now)
    {
        if (CheckState(progress) is { } invalid)
        {
            return new Decision(invalid, null);
        }

        if (build.DispatchedAt is null)
        {
            return Refuse(StatusCode.FailedPrecondition, $"build {build.Id} has not been handed to a builder yet");
        }

        if (build.Builder != caller)
        {
            return Refuse(StatusCode.PermissionDenied, $"build {build.Id} was handed to {build.Builder}, not to {caller}");
        }

        if (Finished(build) && progress.State == build.State && progress.Images.Count == 0)
        {
            return new Decision(null, null); // stored already: its lines were committed with it
        }

        if (Finished(build))
        {
            return Refuse(StatusCode.FailedPrecondition, $"build {build.Id} has already {Ended(build.State)}");
        }

        if (progress.State == BuildState.Cancelled && build.CancelRequestedBy.Length == 0)
        {
            return Refuse(StatusCode.InvalidArgument, $"state: build {build.Id} was not asked to stop; a builder reports CANCELLED only then");
        }

        var next = build.Clone();
        if (progress.State is not BuildState.Unspecified)
        {
            next.StartedAt ??= now;
            next.State = progress.State;
            if (Finished(next))
            {
                next.FinishedAt = now;
                next.Error = ReportLimits.Cut(progress.Error, ReportLimits.MaxMessage);
            }
        }

        foreach (var image in progress.Images)
        {
            var fitted = Fit(image);
            var i = IndexOf(next, fitted.Path);
            if (i >= 0)
            {
                next.Images[i] = fitted;
            }
            else if (next.Images.Count < BuildQueue.MaxImageResults)
            {
                next.Images.Add(fitted);
            }
        }

        return new Decision(null, next);
    }

    public static bool Finished(Build b) => b.State is BuildState.Succeeded or BuildState.Failed or BuildState.Cancelled;

    /// <summary>How a finished build ended, for messages: "succeeded", "failed", "been cancelled".</summary>
    public static string Ended(BuildState s) => s switch
    {
        BuildState.Succeeded => "succeeded",
        BuildState.Cancelled => "been cancelled",
        _ => "failed",
    };

    /// <summary>
    /// A build's step in its one-way life, its rank within a generation (<see cref="Storage.SaveBuild"/>): its place
    /// (queued 0, handed to a builder 1, running 2, finished 3) × 2, + 1 once an admin asked it to stop. The store
    /// replaces a row only by one of a higher rank, or of the same rank below finished, and an instance takes in only
    /// what is at least as far along as what it holds: a progress decided before the stop request reached this
    /// instance is behind the stored row, refused, and decided again with the request.
    /// </summary>
    public static long Rank(Build b) => (b.State switch
    {
        BuildState.Succeeded or BuildState.Failed or BuildState.Cancelled => Storage.SaveBuild.Finished,
        BuildState.Running => 2,
        BuildState.Queued when b.DispatchedAt is not null => 1,
        _ => 0,
    }) * 2 + (b.CancelRequestedBy.Length > 0 ? 1 : 0);

    private static Decision Refuse(StatusCode status, string message) => new(new BuildQueue.Refusal(status, message), null);

    private static int IndexOf(Build b, string path)
    {
        for (var i = 0; i < b.Images.Count; i++)
        {
            if (b.Images[i].Path == path)
            {
                return i;
            }
        }

        return -1;
    }

    private static ImageResult Fit(ImageResult r) => new()
    {
        Path = ReportLimits.Cut(r.Path, 200),
        Name = ReportLimits.Cut(r.Name, 512),
        Result = ReportLimits.Cut(r.Result, 32),
        Duration = r.Duration,
        Digest = ReportLimits.Cut(r.Digest, 200),
        Error = ReportLimits.Cut(r.Error, ReportLimits.MaxMessage),
        Revision = Common.Contracts.ImageResults.IsRevision(r.Revision) ? r.Revision : string.Empty, // a commit id, or nothing
    };
}
