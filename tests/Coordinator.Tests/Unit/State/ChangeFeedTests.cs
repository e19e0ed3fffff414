using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Tests.Unit.State;

public sealed class ChangeFeedTests
{
    private static WatchEvent Removed(string node) => new() { NodeRemoved = node };

    [Fact]
    public void AResumedSubscription_GetsEveryChangeAfterItsVersion_ExactlyOnce_ThenTheLiveOnes()
    {
        var feed = new ChangeFeed();
        var (first, atStart) = feed.SubscribeAt();
        using var subscribed = first;
        feed.Publish(Removed("a"));
        feed.Publish(Removed("b"));
        Assert.True(first.Reader.TryRead(out var a));
        var (resumed, missed, problem) = feed.Resume(a!.Version);
        Assert.Null(problem);
        using var resumedSubscription = resumed;
        Assert.Equal(["b"], missed.Select(e => e.NodeRemoved));
        feed.Publish(Removed("c"));
        Assert.True(resumed!.Reader.TryRead(out var c));
        Assert.Equal("c", c!.NodeRemoved);
        Assert.False(resumed.Reader.TryRead(out _)); // b came once, with the missed ones

        // From the version a snapshot was made at: everything published since.
        Assert.Equal(["a", "b", "c"], feed.Resume(atStart).Missed.Select(e => e.NodeRemoved));
        // From the newest version: nothing missed.
        Assert.Empty(feed.Resume(c.Version).Missed);
    }

    [Fact]
    public void AVersionTooOld_OfAnotherInstance_OrMadeUp_IsNamed()
    {
        var feed = new ChangeFeed();
        var (s, atStart) = feed.SubscribeAt();
        s.Dispose();
        for (var i = 0; i < ChangeFeed.RecentLength + 5; i++)
        {
            feed.Publish(Removed($"n{i}"));
        }

        var (none, _, tooOld) = feed.Resume(atStart);
        Assert.Null(none);
        Assert.Equal($"the version is too old to resume from: {ChangeFeed.RecentLength + 5} changes since, the last {ChangeFeed.RecentLength} are kept", tooOld); // small changes: bounded by count

        var other = new ChangeFeed().SubscribeAt().Version;
        Assert.StartsWith("the version is not one of this coordinator instance", feed.Resume(other).Problem, StringComparison.Ordinal);
        Assert.StartsWith("the version is not one of this coordinator instance", feed.Resume("made-up").Problem, StringComparison.Ordinal);
        var instance = atStart[..atStart.LastIndexOf(':')];
        Assert.StartsWith("the version is not one of this coordinator instance", feed.Resume($"{instance}:999999999").Problem, StringComparison.Ordinal);

        // The oldest version still kept resumes: exactly the changes after it.
        var oldest = $"{instance}:{5}";
        var (ok, missed, problem) = feed.Resume(oldest);
        ok!.Dispose();
        Assert.Null(problem);
        Assert.Equal(ChangeFeed.RecentLength, missed.Count);
        Assert.Equal("n5", missed[0].NodeRemoved);
    }

    /// <summary>Big changes (a build's with its whole image list) are kept up to <see cref="ChangeFeed.RecentBytes"/>, not 10,000 of them.</summary>
    [Fact]
    public void TheKeptChanges_AreBoundedInBytes()
    {
        var feed = new ChangeFeed();
        var (s, atStart) = feed.SubscribeAt();
        s.Dispose();
        var build = new Build { Id = "1", Request = new BuildRequest() };
        build.Request.Images.AddRange(Enumerable.Range(0, 200).Select(i => $"python311-sssd/web-{i:000}"));
        build.Images.AddRange(Enumerable.Range(0, 200).Select(i => new ImageResult { Path = $"python311-sssd/web-{i:000}", Result = "built" }));
        var each = new WatchEvent { Build = build }.CalculateSize();
        var published = (int)(ChangeFeed.RecentBytes / each) + 100;
        for (var i = 0; i < published; i++)
        {
            feed.Publish(new WatchEvent { Build = build });
        }

        var instance = atStart[..atStart.LastIndexOf(':')];
        var kept = Enumerable.Range(1, published).First(v => feed.Resume($"{instance}:{v}").Problem is null);
        var missed = feed.Resume($"{instance}:{kept}").Missed;
        Assert.True(published - kept < ChangeFeed.RecentLength, "bounded by bytes, not by count");
        Assert.InRange(missed.Sum(e => (long)e.CalculateSize()), ChangeFeed.RecentBytes - (2 * each), ChangeFeed.RecentBytes);
    }
}
