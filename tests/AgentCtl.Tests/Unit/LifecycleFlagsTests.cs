using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.AgentCtl.Tests;

public sealed partial class LifecycleFlagsTests
{
    [Theory]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("2h", 7200)]
    [InlineData("1h30m", 5400)]
    [InlineData("3d", 259200)]
    [InlineData("02:00:00", 7200)]
    public void Durations_are_read_the_way_kubectl_writes_them(string text, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Durations.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("2x")]
    [InlineData("h")]
    [InlineData("-2h")]
    [InlineData("2h 30m")]
    public void What_is_not_a_duration_is_none(string text) => Assert.Null(Durations.Parse(text));
}
