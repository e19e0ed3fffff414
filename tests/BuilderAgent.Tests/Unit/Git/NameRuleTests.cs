using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>Names that reach git's arguments or a Dockerfile: a final newline is refused like any other control character.</summary>
public sealed class NameRuleTests
{
    [Theory]
    [InlineData("main", true)]
    [InlineData("release/2026", true)]
    [InlineData("main\n", false)]
    [InlineData("main\r", false)]
    public void A_branch_name_is_accepted_only_whole(string branch, bool ok) => Assert.Equal(ok, GitCheckout.BranchProblem(branch) is null);

    [Theory]
    [InlineData("latest", true)]
    [InlineData("testing\n", false)]
    [InlineData("x\nRUN id", false)]
    public void A_tag_rendered_into_a_dockerfile_is_accepted_only_whole(string tag, bool ok) => Assert.Equal(ok, NamingOptions.TagProblem(tag) is null);
}
