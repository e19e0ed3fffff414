using Toolforge.Agents.BuilderAgent.Hygiene;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed class HygieneOptionsTests
{
    [Fact]
    public void DanglingAfter_UnderAnHour_IsRefusedInOneLine_TheDefaultsPass()
    {
        Assert.Empty(new HygieneOptions().Validate(HygieneOptions.Section));
        Assert.Equal(["Builder:Hygiene:DanglingAfter: must be at least 01:00:00, so the last builds stay for a look (got 00:05:00)"],
            new HygieneOptions { DanglingAfter = TimeSpan.FromMinutes(5) }.Validate(HygieneOptions.Section));
    }
}
