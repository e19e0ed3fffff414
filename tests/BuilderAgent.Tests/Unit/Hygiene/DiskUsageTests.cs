using System.Text;
using Toolforge.Agents.BuilderAgent.Docker;

namespace Toolforge.Agents.BuilderAgent.Tests.Unit.Hygiene;

/// <summary>The builder's reading of the engine's /system/df answer: what counts toward the budget, and what is refused.</summary>
public sealed class DiskUsageTests
{
    private static (long, long) Parse(string json) => BuilderDocker.ParseDiskUsage(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void LayersSize_AndTheBuildCacheNotSharedWithImages_AreCounted()
    {
        Assert.Equal((1000L, 30L), Parse("""{"LayersSize":1000,"Images":[{"Id":"x"}],"BuildCache":[{"Size":10},{"Size":20,"Shared":false},{"Size":500,"Shared":true},{"Size":-4}]}"""));
        Assert.Equal((0L, 0L), Parse("""{"Images":[],"BuildCache":null}""")); // a newer engine leaves LayersSize out with no image
        Assert.Equal((0L, 0L), Parse("""{}"""));
    }

    [Theory]
    [InlineData("""{"Images":[{"Id":"x"}]}""", "no LayersSize")]
    [InlineData("""{"LayersSize":"12","Images":[{"Id":"x"}]}""", "no LayersSize")]
    [InlineData("""{"LayersSize":-1,"Images":[{"Id":"x"}]}""", "no LayersSize")]
    [InlineData("""[1,2]""", "not an object")]
    [InlineData("""{"LayersSize":""", "not JSON")]
    public void AnAnswerThatSaysNoSize_IsRefused_AsADockerFailure_NotABug(string json, string why)
    {
        var ex = Assert.Throws<DockerOperationException>(() => Parse(json));
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("disk usage (/system/df): ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BuildCacheRecordsOfAnotherShape_AreSkipped_NotThrown()
    {
        // 7 counted; a size as a string and a record that is no object skipped; a Shared that is no boolean is not "shared".
        Assert.Equal((5L, 14L), Parse("""{"LayersSize":5,"Images":[{}],"BuildCache":[{"Size":7},{"Size":"9"},7,{"Size":7,"Shared":"yes"},{"Size":7,"Shared":true}]}"""));
    }
}
