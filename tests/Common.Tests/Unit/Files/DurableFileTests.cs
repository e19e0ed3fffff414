using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

public sealed partial class DurableFileTests
{
    public static TheoryData<string> Kinds => new(SpecialFiles.Kinds);

    [Fact]
    public void Write_OverARegularFile_OrNothing_Works()
    {
        using var dir = new TempDir();
        Assert.Null(DurableFile.Problem(dir["new/state"]));
        DurableFile.Write(dir["new/state"], "one");
        Assert.Null(DurableFile.Problem(dir["new/state"]));
        DurableFile.Write(dir["new/state"], "two");
        Assert.Equal("two", File.ReadAllText(dir["new/state"]));
        Assert.Equal(["state"], Directory.GetFileSystemEntries(dir["new"]).Select(Path.GetFileName));
    }

    [Fact]
    public void Write_ThroughASymlinkedDirectory_IsFine_OnlyTheLastComponentMustBeARegularFile()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["real"]);
        Directory.CreateSymbolicLink(dir["link"], dir["real"]);
        DurableFile.Write(dir["link/state"], "x");
        Assert.Equal("x", File.ReadAllText(dir["real/state"]));
    }

    [Fact]
    public void Write_DoesNotFollowASymlinkPlantedAtItsTempPath()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["victim"], "victim\n");
        File.CreateSymbolicLink(dir[$"state.{Environment.ProcessId}.tmp"], dir["victim"]);
        DurableFile.Write(dir["state"], "x");
        Assert.Equal("victim\n", File.ReadAllText(dir["victim"]));
        Assert.Equal("x", File.ReadAllText(dir["state"]));
    }
}
