using Toolforge.Agents.BuilderAgent.Cli;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.BuilderAgent;

/// <summary>toolforge-builder-agent's command line: the one-shot build commands and `serve`, the daemon.</summary>
internal static class BuilderAgentHost
{
    public static Task<int> RunAsync(string[] args)
    {
        var root = ProgramCommandLine.Root(DaemonInfo.BuilderAgent.Name,
            "toolforge-builder-agent: rebuilds Toolforge's container images (build.py's behaviour, faster and safer); `serve` runs it as "
            + "the daemon that takes build requests from the coordinator.");
        foreach (var command in BuilderCli.Commands())
        {
            root.Subcommands.Add(command);
        }

        root.Subcommands.Add(BuilderDaemon.Command());
        return ProgramCommandLine.InvokeAsync(root, args);
    }
}
