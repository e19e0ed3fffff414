using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>Build progress decided against the build as stored: refused, already done, or the next build.</summary>
public sealed class BuildProgressTests
{
    private static readonly Timestamp Now = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 5, 10, 0, 0, TimeSpan.Zero));

    private static Build Handed(BuildState state = BuildState.Queued) => new()
    {
        Id = "7",
        State = state,
        Builder = "builder1.example",
        DispatchedAt = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 5, 9, 0, 0, TimeSpan.Zero)),
    };

    private static CommandProgress Progress(BuildState state, string error = "") => new() { CommandId = "t", Node = "builder1.example", State = state, Error = error };

    [Fact]
    public void Succeeded_is_the_next_build_and_the_build_handed_in_is_untouched()
    {
        var running = Handed(BuildState.Running);
        var d = BuildProgress.Apply(running, "builder1.example", Progress(BuildState.Succeeded), Now);
        Assert.Null(d.Refusal);
        Assert.Equal(BuildState.Succeeded, d.Next!.State);
        Assert.Equal(Now, d.Next.FinishedAt);
        Assert.Equal(BuildState.Running, running.State);
        Assert.Null(running.FinishedAt);
    }

    [Fact]
    public void The_same_final_state_again_is_already_done_and_another_is_refused()
    {
        var done = BuildProgress.Apply(Handed(BuildState.Running), "builder1.example", Progress(BuildState.Succeeded), Now).Next!;
        Assert.True(BuildProgress.Apply(done, "builder1.example", Progress(BuildState.Succeeded), Now).AlreadyDone);
        Assert.Equal(StatusCode.FailedPrecondition, BuildProgress.Apply(done, "builder1.example", Progress(BuildState.Failed, "x"), Now).Refusal!.Status);
    }

    [Fact]
    public void A_final_state_whose_write_failed_is_applied_again_in_full()
    {
        var running = Handed(BuildState.Running);
        var refused = BuildProgress.Apply(running, "builder1.example", Progress(BuildState.Succeeded), Now); // not stored: the build stays running
        var resent = BuildProgress.Apply(running, "builder1.example", Progress(BuildState.Succeeded), Now);
        Assert.False(resent.AlreadyDone);
        Assert.Equal(refused.Next, resent.Next);
    }

    [Fact]
    public void Progress_from_another_builder_before_hand_over_or_in_a_state_builders_never_send_is_refused()
    {
        Assert.Equal(StatusCode.PermissionDenied, BuildProgress.Apply(Handed(), "builder2.example", Progress(BuildState.Running), Now).Refusal!.Status);
        Assert.Equal(StatusCode.FailedPrecondition, BuildProgress.Apply(new Build { Id = "8", State = BuildState.Queued }, "builder1.example", Progress(BuildState.Running), Now).Refusal!.Status);
        Assert.Equal(StatusCode.InvalidArgument, BuildProgress.Apply(Handed(), "builder1.example", Progress(BuildState.Queued), Now).Refusal!.Status);
    }

    [Fact]
    public void Running_sets_started_once_and_images_are_replaced_by_path()
    {
        var p = Progress(BuildState.Running);
        p.Images.Add(new ImageResult { Path = "base", Result = "building" });
        var first = BuildProgress.Apply(Handed(), "builder1.example", p, Now).Next!;
        var later = Timestamp.FromDateTimeOffset(Now.ToDateTimeOffset().AddMinutes(1));
        var q = Progress(BuildState.Unspecified);
        q.Images.Add(new ImageResult { Path = "base", Result = "built" });
        var second = BuildProgress.Apply(first, "builder1.example", q, later).Next!;
        Assert.Equal(Now, second.StartedAt);
        Assert.Equal("built", Assert.Single(second.Images).Result);
    }
}
