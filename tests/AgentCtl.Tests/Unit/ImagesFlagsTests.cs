using Toolforge.Agents.AgentCtl.Commands;

namespace Toolforge.Agents.AgentCtl.Tests;

public sealed class ImagesFlagsTests
{
    [Theory]
    [InlineData("openssl", "openssl", null)]
    [InlineData("openssl=3.0.15-1~deb12u1", "openssl", "3.0.15-1~deb12u1")]
    [InlineData("bsdutils=1:2.38.1-5+deb12u3", "bsdutils", "1:2.38.1-5+deb12u3")]
    [InlineData("npm:left-pad=1.3.0", "npm:left-pad", "1.3.0")]
    [InlineData("npm:@types/node", "npm:@types/node", null)]
    [InlineData("composer:monolog/monolog=3.5.0", "composer:monolog/monolog", "3.5.0")]
    public void Package_NameOrNameEqualsVersion_IsParsed(string value, string name, string? version)
    {
        var parsed = ImagesCommand.Parse(value);
        Assert.Null(parsed.Problem);
        Assert.Equal((name, version), (parsed.Name, parsed.Version));
    }

    [Theory]
    [InlineData("OpenSSL", "is not a Debian package name")]
    [InlineData("", "is not a Debian package name")]
    [InlineData("openssl=", "is not a Debian version")]
    [InlineData("openssl=1 2", "is not a Debian version")]
    [InlineData("cargo:serde", "is not a language package")]
    [InlineData("npm:", "is not a language package")]
    [InlineData("npm:x=1 2", "is not a language package's version")]
    [InlineData("npm:a/b", "is not a language package")]
    [InlineData("gem:x/y", "is not a language package")]
    [InlineData("x\u001b]0;owned\u0007", "\\x1b]0;owned\\x07")]
    public void Package_NotDebians_IsOneEscapedLine(string value, string said)
    {
        var problem = ImagesCommand.Parse(value).Problem;
        Assert.NotNull(problem);
        Assert.Contains(said, problem, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', problem);
    }
}
