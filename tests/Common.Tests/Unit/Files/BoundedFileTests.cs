using Toolforge.Agents.Common.Files;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

public sealed class BoundedFileTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(256)]
    [InlineData(4095)]
    [InlineData(100_000)]
    public void A_limit_of_any_size_reads_a_file_up_to_it_and_names_one_past_it(int limit)
    {
        using var dir = new TempDir("bounded");
        File.WriteAllText(dir["fits"], new string('x', limit));
        Assert.Equal(limit, BoundedFile.ReadText("the test file", dir["fits"], limit).Length);
        File.WriteAllText(dir["over"], new string('x', limit + 1));
        var e = Assert.ThrowsAny<Exception>(() => BoundedFile.ReadText("the test file", dir["over"], limit));
        Assert.Contains("the test file", e.Message, StringComparison.Ordinal);
    }
}
