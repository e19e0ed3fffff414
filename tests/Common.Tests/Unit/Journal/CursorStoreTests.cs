using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

public sealed class CursorStoreTests
{
    private const string Cursor = "s=0123456789abcdef0123456789abcdef;i=1f;b=fedcba9876543210fedcba9876543210;m=2a;t=5f3a1b2c3d4e5;x=abc";

    [Fact]
    public void SaveThenLoad_RoundTrips_AndLeavesNoTempFile()
    {
        using var dir = new TempDir();
        var store = new CursorStore(dir["sub/cursor"]);
        Assert.Null(store.Load());
        store.Save(Cursor);
        store.Save(Cursor.Replace("i=1f", "i=20", StringComparison.Ordinal));
        Assert.Equal(Cursor.Replace("i=1f", "i=20", StringComparison.Ordinal), store.Load());
        Assert.Equal(["cursor"], Directory.GetFiles(dir["sub"]).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not a cursor")]
    [InlineData("s=abc\u0001")]
    public void AFileThatIsNotACursor_IsAnErrorNamingIt(string content)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["cursor"], content);
        var ex = Assert.Throws<InvalidDataException>(() => new CursorStore(dir["cursor"]).Load());
        Assert.Contains(dir["cursor"], ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DurableFile_WithAMode_CreatesItThatWay_OverAnOldFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["key"], "old");
        File.SetUnixFileMode(dir["key"], (UnixFileMode)Convert.ToInt32("644", 8));
        Files.DurableFile.Write(dir["key"], "secret", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir["key"]));
        Assert.Equal("secret", File.ReadAllText(dir["key"]));
    }
}
