using Microsoft.Extensions.Hosting;

namespace Toolforge.Agents.NodeAgent;

/// <summary>The node-agent's services: the checks and audits, each on its own interval with a hard timeout.</summary>
internal static class NodeAgentDaemon
{
    public const int DefaultMetricsPort = 9502;

    public static void Configure(HostApplicationBuilder builder)
    {
    }
}
