using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Reporting;

namespace Toolforge.Agents.NodeAgent.Tests;

internal static class Support
{
    public static AgentState State(TimeProvider? time = null) => new(time ?? TimeProvider.System, NullLogger<AgentState>.Instance);

    public static IOptions<NodeAgentOptions> Options(Action<NodeAgentOptions> edit)
    {
        var o = new NodeAgentOptions();
        edit(o);
        return Microsoft.Extensions.Options.Options.Create(o);
    }
}
