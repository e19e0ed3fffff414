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
}
