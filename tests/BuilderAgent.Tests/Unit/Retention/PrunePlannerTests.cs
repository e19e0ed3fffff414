using Toolforge.Agents.BuilderAgent.Retention;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The prune's decision without the registry (issue 27): what is kept, what is deleted, and the shared-digest trap.</summary>
public sealed class PrunePlannerTests
{
    private static string D(int n) => "sha256:" + n.ToString("x64", System.Globalization.CultureInfo.InvariantCulture);

    private static string H(int day, int n) =>
        HistoryTags.For(new DateTimeOffset(2026, 11, day, 12, 0, 0, TimeSpan.Zero), D(n));

    private static readonly HashSet<string> None = [];

    [Fact]
    public void HistoryTags_RoundTrip_AndOnlyOursParse()
    {
        var at = new DateTimeOffset(2026, 12, 6, 18, 15, 0, TimeSpan.Zero);
        var tag = HistoryTags.For(at, "sha256:3f2a9b1c4d5e" + new string('0', 52));
        Assert.Equal("build-20261206-181500-3f2a9b1c4d5e", tag);
        Assert.Equal(at, HistoryTags.When(tag));
        Assert.Null(HistoryTags.When("build-20261206-181500-3F2A9B1C4D5E"));
        Assert.Null(HistoryTags.When("build-20261306-181500-3f2a9b1c4d5e")); // no 13th month
        Assert.Null(HistoryTags.When("v1.0"));
        Assert.Null(HistoryTags.When("build-20261206-181500-3f2a9b1c4d5e\n"));
    }

    [Fact]
    public void KeepsTheNewestN_DeletesOlderDigests_WithWhy()
    {
        var tags = new Dictionary<string, string>
        {
            [H(1, 1)] = D(1), [H(2, 2)] = D(2), [H(3, 3)] = D(3), [H(4, 4)] = D(4),
            ["testing"] = D(4), ["latest"] = D(3),
        };

        var plan = PrunePlanner.Plan("reg/x", tags, 2, None, "none of 3 nodes");

        Assert.Equal([D(1), D(2)], plan.Deletions.Select(d => d.Digest));
        Assert.Equal([H(1, 1)], plan.Deletions[0].Tags);
        Assert.Contains("not testing (" + D(4) + ") nor latest (" + D(3) + ")", plan.Deletions[0].Why, StringComparison.Ordinal);
        Assert.Contains("held or used by none of 3 nodes", plan.Deletions[0].Why, StringComparison.Ordinal);
        Assert.Empty(plan.Spared);
        Assert.Equal(4, plan.HistoryTags);
    }

    [Fact]
    public void AnOldTagOnTheDigestLatestNames_IsSpared_NeverDeletedWithLatest()
    {
        // latest was promoted long ago: its digest's history tag is old, but deleting it would delete latest.
        var tags = new Dictionary<string, string> { [H(1, 1)] = D(1), [H(2, 2)] = D(2), [H(3, 3)] = D(3), ["testing"] = D(3), ["latest"] = D(1) };

        var plan = PrunePlanner.Plan("reg/x", tags, 1, None, "none");

        Assert.Equal([D(2)], plan.Deletions.Select(d => d.Digest));
        var spared = Assert.Single(plan.Spared);
        Assert.Equal(D(1), spared.Digest);
        Assert.Contains("latest", spared.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void ADigestNamedByAnOldAndAKeptHistoryTag_IsSpared()
    {
        var tags = new Dictionary<string, string> { [H(1, 7)] = D(7), [H(2, 8)] = D(8), [H(3, 9)] = D(7) }; // rebuilt to the same digest

        var plan = PrunePlanner.Plan("reg/x", tags, 1, None, "none");

        Assert.Equal([D(8)], plan.Deletions.Select(d => d.Digest));
        Assert.Equal(D(7), Assert.Single(plan.Spared).Digest);
    }

    [Fact]
    public void ADigestANodeHolds_IsSpared_AndAForeignTagKeepsItsDigest()
    {
        var tags = new Dictionary<string, string> { [H(1, 1)] = D(1), [H(2, 2)] = D(2), [H(3, 3)] = D(3), ["v1.0"] = D(2) };

        var plan = PrunePlanner.Plan("reg/x", tags, 1, new HashSet<string> { D(1) }, "none");

        Assert.Empty(plan.Deletions);
        Assert.Equal([D(1), D(2)], plan.Spared.Select(s => s.Digest).Order());
        Assert.Contains(plan.Spared, s => s.Digest == D(1) && s.Why == "a node holds or uses this digest");
        Assert.Contains(plan.Spared, s => s.Digest == D(2) && s.Why.Contains("v1.0", StringComparison.Ordinal));
    }

    [Fact]
    public void TheReferrersTag_GoesWithItsSubject_AndIsNeverKeptNorDeletedAlone()
    {
        var referrers1 = "sha256-" + D(1)[7..];
        var referrers3 = "sha256-" + D(3)[7..];
        var tags = new Dictionary<string, string> { [H(1, 1)] = D(1), [H(2, 3)] = D(3), [referrers1] = D(100), [referrers3] = D(101) };

        var plan = PrunePlanner.Plan("reg/x", tags, 1, None, "none");

        var d = Assert.Single(plan.Deletions);
        Assert.Equal(D(1), d.Digest);
        Assert.Equal(referrers1, d.ReferrersTag);
        Assert.Equal(1, plan.KeptTags); // the newest history tag; referrers tags are not counted as kept
    }

    [Fact]
    public void KeepBelowOne_IsAnError()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PrunePlanner.Plan("reg/x", new Dictionary<string, string>(), 0, None, "none"));
    }

    [Fact]
    public void AManifestAKeptIndexLists_IsSpared_AndAnIndexListingAHeldManifest_IsSpared()
    {
        // latest names an index I(10) that lists the old single-platform manifest D(1) (an unchanged rebuild pushed as an
        // index); D(2) is an old index listing D(20), which a node pulled by its own digest.
        var tags = new Dictionary<string, string> { [H(1, 1)] = D(1), [H(2, 2)] = D(2), [H(3, 3)] = D(3), [H(4, 10)] = D(10), ["latest"] = D(10) };
        var entries = new Dictionary<string, IReadOnlyList<string>> { [D(10)] = [D(1)], [D(2)] = [D(20), D(21)] };

        var plan = PrunePlanner.Plan("reg/x", tags, 1, new HashSet<string> { D(20) }, "none", entries);

        Assert.Equal([D(3)], plan.Deletions.Select(d => d.Digest));
        Assert.Contains(plan.Spared, s => s.Digest == D(1) && s.Why == $"the index {D(10)}, kept or held, lists it");
        Assert.Contains(plan.Spared, s => s.Digest == D(2) && s.Why == $"this index lists {D(20)}, which is kept or held");
    }

    [Fact]
    public void HistoryTagsYoungerThanKeepDays_AreKept_WhateverKeepSays()
    {
        var tags = new Dictionary<string, string> { [H(1, 1)] = D(1), [H(20, 2)] = D(2), [H(25, 3)] = D(3) };

        var plan = PrunePlanner.Plan("reg/x", tags, 1, None, "none", youngerThan: new DateTimeOffset(2026, 11, 10, 0, 0, 0, TimeSpan.Zero));

        Assert.Equal([D(1)], plan.Deletions.Select(d => d.Digest)); // D(2) is past keep 1 but younger than the bound
    }

    [Theory]
    [InlineData(null, 0, 0, "the coordinator sent no list of what the nodes hold (an older coordinator?)")]
    [InlineData("no node-agent has reported", 0, 0, "no node-agent has reported")]
    [InlineData("", 16, 0, "what the nodes hold was taken 16 min ago (the prune waited behind other work; at most 15 min): ask again")]
    [InlineData("", 1, 20, "what the nodes hold was taken 20 min ago (the prune waited behind other work; at most 15 min): ask again")] // the clock says 1 min, it waited 20 here
    [InlineData("", -30, 0, "the coordinator took what the nodes hold 30 min ahead of this builder's clock: set the clocks right")]
    [InlineData("", 1, 1, null)]
    public void TheBuilderRefusesAProtectionItCannotTrust(string? refusal, int minutesByClock, int minutesWaited, string? expected)
    {
        var now = new DateTimeOffset(2026, 12, 6, 20, 0, 0, TimeSpan.Zero);
        var protection = refusal is null ? null : new Contracts.V1.ImageProtection
        {
            Refusal = refusal,
            TakenAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now - TimeSpan.FromMinutes(minutesByClock)),
            Digests = { D(1) },
        };

        Assert.Equal(expected, Daemon.BuildQueueService.ProtectionProblem(protection, now, TimeSpan.FromMinutes(minutesWaited)));
    }

    [Fact]
    public void TheBuilderRefusesAProtectionEntryThatIsNoDigest()
    {
        var now = DateTimeOffset.UtcNow;
        var p = new Contracts.V1.ImageProtection { TakenAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now), Digests = { "sha256:\u001b[2J" } };
        Assert.Equal("the coordinator's list holds \"sha256:\\x1b[2J\", not a digest", Daemon.BuildQueueService.ProtectionProblem(p, now, TimeSpan.Zero));
    }
}
