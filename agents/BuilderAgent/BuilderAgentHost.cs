using System.CommandLine;
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

        // --config before the subcommand, as every daemon takes it (`toolforge-builder-agent --config F serve`), or after
        // `serve`. Only `serve`, `verify` and `promote` read a configuration file: another one-shot command given it is told so, not left to ignore it.
        var config = new Option<string?>("--config") { Description = $"Configuration file for serve (default {DaemonInfo.BuilderAgent.DefaultConfigPath})" };
        root.Options.Add(config);
        var serve = BuilderDaemon.Command(config);
        root.Subcommands.Add(serve);
        // verify and promote act exactly as the daemon would: they read its configuration file too.
        var verify = VerifyCommand.Create(config);
        var promote = PromoteCommand.Create(config);
        root.Subcommands.Add(verify);
        root.Subcommands.Add(promote);
        foreach (var other in root.Subcommands.Where(c => c != serve && c != verify && c != promote))
        {
            other.Validators.Add(r =>
            {
                if (r.GetResult(config) is { Implicit: false })
                {
                    r.AddError($"--config: only serve reads a configuration file; {other.Name} takes its settings as flags (see {DaemonInfo.BuilderAgent.Name} {other.Name} --help)");
                }
            });
        }

        return ProgramCommandLine.InvokeAsync(root, args);
    }
}
