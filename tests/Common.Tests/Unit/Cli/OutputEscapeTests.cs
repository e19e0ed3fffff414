using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.Common.Tests;

public sealed class OutputEscapeTests
{
    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("\u001b]0;owned\u0007", @"\x1b]0;owned\x07")]
    [InlineData("a\nb\tc\rd", @"a\x0ab\x09c\x0dd")]
    [InlineData("del\u007f c1\u009b", @"del\x7f c1\x9b")]
    [InlineData("rtl \u202eevil", @"rtl \u{202e}evil")]
    [InlineData("ünïcödé stays", "ünïcödé stays")]
    public void Escape_ShowsWhatATerminalWouldObey(string input, string shown) => Assert.Equal(shown, Output.Escape(input));

    [Fact]
    public void Table_EscapesEveryCell_AndStaysAligned()
    {
        var table = Output.Table(["A", "B"], [["x\u001b[31m", "y"], ["long-cell", "z"]]);
        Assert.DoesNotContain('\u001b', table);
        Assert.Contains(@"x\x1b[31m", table, StringComparison.Ordinal);
    }

    [Fact]
    public void Yaml_QuotesAndEscapesControlCharacters()
    {
        var yaml = Output.Yaml(System.Text.Json.Nodes.JsonNode.Parse("{\"m\": \"a\\u001bb\"}"));
        Assert.DoesNotContain('\u001b', yaml);
        Assert.Contains(@"\u001B", yaml, StringComparison.OrdinalIgnoreCase);
    }
}
