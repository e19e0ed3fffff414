using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

public sealed partial class DurableFileTests
{
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
}
