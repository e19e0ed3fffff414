using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

public sealed class DurableFileTests
{
    public static TheoryData<string> Kinds => new(SpecialFiles.Kinds);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Write_OverSomethingThatIsNotARegularFile_IsRefused_NamingPathAndKind_AndLeavesItAlone(string kind)
    {
        using var dir = new TempDir();
        var path = dir["state"];
        await SpecialFiles.MakeAsync(kind, path);
        var before = await SpecialFiles.IdentityAsync(path);

        var ex = Assert.Throws<NotARegularFileException>(() => DurableFile.Write(path, "cursor"));
        Assert.Equal($"{path} is a {kind}{(kind == SpecialFiles.Symlink ? $" (to {path}.target)" : string.Empty)}, not a regular file: refusing to replace it", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Equal(ex.Message, DurableFile.Problem(path));
        Assert.Equal(before, await SpecialFiles.IdentityAsync(path));
        Assert.DoesNotContain(Directory.EnumerateFiles(dir.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal)); // no temp file left

        // A cursor store reads none of it (a FIFO would block the read) and says why.
        var load = Assert.Throws<InvalidDataException>(() => new CursorStore(path).Load());
        Assert.Equal(ex.Message, load.Message);
        Assert.Equal(before, await SpecialFiles.IdentityAsync(path));
    }

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
