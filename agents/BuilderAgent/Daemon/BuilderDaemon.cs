using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.BuilderAgent.Daemon;

/// <summary>`serve`: the builder as a daemon taking build requests from the coordinator.</summary>
internal static class BuilderDaemon
{
    public const int DefaultMetricsPort = 9503;

    public static Task<int> RunAsync(string[] args) =>
        AgentDaemon.RunAsync(DaemonInfo.BuilderAgent, args, DefaultMetricsPort, _ => { });
}
