using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// Every program's shape, from its sources (README "Architecture"): the root namespace holds what every feature may
/// use (options, ids, the types shared by its features), the wiring and the command line live in a folder of their
/// own, and no feature folder and the root use each other (a feature that needs the root while the root needs the
/// feature means something sits on the wrong side).
/// </summary>
public sealed class ProgramShapeTests
{
    [Theory]
    [InlineData("NodeAgent")]
    [InlineData("Coordinator")]
    [InlineData("BuilderAgent")]
    [InlineData("LogShipper")]
    [InlineData("AgentCtl")]
    public void No_feature_folder_and_the_programs_root_use_each_other(string program)
    {
        var root = $"Toolforge.Agents.{program}";
        var sources = SourceShape.Read(Path.Combine(Run.RepoRoot, "agents", program));
        Assert.True(sources.Count(s => s.Namespace?.StartsWith(root + ".", StringComparison.Ordinal) == true) >= 5, $"{program}: the feature folders were not found");
        var cycles = SourceShape.Cycles(root, sources);
        Assert.True(cycles.Count == 0, $"{program}: the root and these features use each other (move what both need into the root, or what the root needs out of it):\n" + string.Join("\n", cycles));
    }
}
