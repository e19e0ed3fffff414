using Toolforge.Agents.Coordinator.Security;

namespace Toolforge.Agents.Coordinator.Tests;

public sealed class GlobTests
{
    [Theory]
    [InlineData("tools-k8s-*.example", "tools-k8s-worker-1.example", true)]
    [InlineData("tools-k8s-*.example", "tools-k8s-worker-1.example\n", false)] // .NET's $ would have let a final newline through
    [InlineData("tools-k8s-*.example", "tools-k8s-a.b.example", false)]       // * stays within one label
    [InlineData("worker-?", "worker-7", true)]
    [InlineData("worker-?", "worker-7\n", false)]
    public void A_node_pattern_names_exactly_the_whole_name(string pattern, string name, bool matches) =>
        Assert.Equal(matches, SecurityPolicy.Glob(pattern).IsMatch(name));
}
