using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.Common.Cli;

/// <summary>
/// How every program's command line behaves: <c>--help</c>/<c>-h</c> print usage and <c>--version</c> the version,
/// both exit 0 without reading any configuration; an unknown subcommand or flag prints the error and the usage to
/// stderr and exits 2 (<see cref="ExitCodes.Usage"/>).
/// </summary>
public static class ProgramCommandLine
{
    /// <summary>A root command named <paramref name="program"/> whose --version prints "program version".</summary>
    public static RootCommand Root(string program, string description)
    {
        var root = new RootCommand(description);
        foreach (var o in root.Options)
        {
            if (o is VersionOption v)
            {
                v.Action = new PrintVersion(program);
            }
        }

        ShellIntegration.AddTo(root, program);
        return root;
    }

    /// <summary>For a daemon: the --config option every subcommand takes (default: the daemon's file).</summary>
    public static Option<string?> ConfigOption(DaemonInfo daemon) => new("--config")
    {
        Description = $"Configuration file (default {daemon.DefaultConfigPath})",
        Recursive = true,
    };

    private static readonly HashSet<Command> Daemons = [];

    /// <summary>
    /// Marks <paramref name="command"/> as the one that runs the daemon: its host handles SIGTERM and SIGINT itself
    /// (an orderly stop, READY/STOPPING to systemd), so the command line must not install its own handlers for them.
    /// </summary>
    public static T HostsDaemon<T>(T command)
        where T : Command
    {
        lock (Daemons)
        {
            Daemons.Add(command);
        }

        return command;
    }

    public static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // The errors, then the usage of the command that was meant, all on stderr.
            foreach (var e in parsed.Errors)
            {
                await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            }

            await Console.Error.WriteLineAsync().ConfigureAwait(false);
            new HelpAction().Invoke(root.Parse([.. CommandPath(parsed), "--help"], new ParserConfiguration()), Console.Error);
            return ExitCodes.Usage;
        }

        bool daemon;
        lock (Daemons)
        {
            daemon = Daemons.Contains(parsed.CommandResult.Command);
        }

        return await parsed.InvokeAsync(daemon ? new InvocationConfiguration { ProcessTerminationTimeout = null } : new InvocationConfiguration())
            .ConfigureAwait(false);
    }

    /// <summary>Usage of <paramref name="command"/> to stderr and exit 2: for a program run without the subcommand it needs.</summary>
    public static int UsageError(ParseResult parsed, string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.WriteLine();
        new HelpAction().Invoke(parsed.RootCommandResult.Command.Parse([.. CommandPath(parsed), "--help"]), Console.Error);
        return ExitCodes.Usage;
    }

    private static IEnumerable<string> CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (var r = parsed.CommandResult; r.Parent is System.CommandLine.Parsing.CommandResult parent; r = parent)
        {
            names.Add(r.Command.Name);
        }

        names.Reverse();
        return names;
    }

    private static void Invoke(this HelpAction help, ParseResult result, TextWriter to)
    {
        var previous = result.InvocationConfiguration.Output;
        result.InvocationConfiguration.Output = to;
        try
        {
            help.Invoke(result);
        }
        finally
        {
            result.InvocationConfiguration.Output = previous;
        }
    }

    private sealed class PrintVersion(string program) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"{program} {DaemonInfo.Version}");
            return ExitCodes.Ok;
        }
    }
}
