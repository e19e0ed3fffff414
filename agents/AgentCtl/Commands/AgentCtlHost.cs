using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl's command line: one command per file under Commands/.</summary>
internal static class AgentCtlHost
{
    public static Task<int> RunAsync(string[] args)
    {
        var root = ProgramCommandLine.Root("agentctl", "agentctl: ask the toolforge-agents coordinator about nodes, findings and builds");
        var g = new AgentCtlOptions();
        foreach (var o in g.All)
        {
            root.Options.Add(o);
        }

        foreach (var command in new[]
        {
            NodesCommand.Create(g), NodeCommand.Create(g), FindingsCommand.Create(g), BuildsCommand.Create(g), BuildCommand.Create(g), ImagesCommand.Create(g), PromoteCommand.Create(g),
            BuildLogCommand.Create(g), WatchCommand.Create(g), ForgetCommand.Create(g), AckCommand.Create(g), RemediationCommand.Create(g), PkiCommand.Create(g),
        })
        {
            root.Subcommands.Add(command);
        }

        return ProgramCommandLine.InvokeAsync(root, args);
    }
}
