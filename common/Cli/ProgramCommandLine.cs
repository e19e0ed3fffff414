using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.Common.Cli;

/// <summary>
/// How every program's command line behaves: <c>--help</c>/<c>-h</c> print usage and <c>--version</c> the version,
/// both exit 0 without reading any configuration; an unknown subcommand or flag prints the error and the usage to
/// stderr and exits 2 (<see cref="ExitCodes.Usage"/>); a bad value for a flag is one line naming the flag, in words
/// (never a .NET type name), and exits 2. Every numeric flag of every program (a count, a number of seconds, a
/// duration) takes a positive value a timer can hold: 0, a negative number, NaN or 1e308 are refused by the flag's name.
/// </summary>
public static partial class ProgramCommandLine
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
        RequirePositiveNumbers(root, []);
        ParseResult parsed;
        try
        {
            parsed = root.Parse(args);
        }
        catch (InvalidOperationException ex) when (CannotParse().IsMatch(ex.Message))
        {
            // A command's own validator that reads a value System.CommandLine could not convert (--limit x) throws.
            await Console.Error.WriteLineAsync(Describe(ex.Message, null)).ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        if (parsed.Errors.Count > 0)
        {
            // One line per flag or argument refused: a program's own rule (--sample 1 s to 1 h) is said, not also the common one.
            var errors = parsed.Errors.Where((e, i) => e.SymbolResult is not (OptionResult or ArgumentResult) || !parsed.Errors.Take(i).Any(p => p.SymbolResult == e.SymbolResult));
            foreach (var e in errors)
            {
                await Console.Error.WriteLineAsync(Describe(e.Message, e.SymbolResult)).ConfigureAwait(false);
            }

            // A value refused for a flag or argument is said in its line, as is a command's own rule naming its flag
            // ("--for: required"); anything else (an unknown flag or command, a missing one) is followed by the usage
            // of the command that was meant, all on stderr.
            if (!parsed.Errors.All(e => e.SymbolResult is OptionResult or ArgumentResult || e.Message.StartsWith("--", StringComparison.Ordinal)))
            {
                await Console.Error.WriteLineAsync().ConfigureAwait(false);
                new HelpAction().Invoke(root.Parse([.. CommandPath(parsed), "--help"], new ParserConfiguration()), Console.Error);
            }

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

    /// <summary>The longest number of seconds a numeric flag takes: what a timer can hold (about 24.8 days).</summary>
    public static readonly double LongestSeconds = Math.Floor(Options.Check.LongestDuration.TotalSeconds);

    /// <summary>
    /// Adds to every numeric option of <paramref name="command"/> and its subcommands (once) the rule every program
    /// follows: a count is at least 1; a number (of seconds) is finite, above 0 and at most <see cref="LongestSeconds"/>;
    /// a duration is above 0 and at most <see cref="Options.Check.LongestDuration"/>. A command's own, narrower rule
    /// (--jobs 1-64) is checked as well.
    /// </summary>
    public static void RequirePositiveNumbers(Command command, HashSet<Option> seen)
    {
        foreach (var option in command.Options.Where(seen.Add))
        {
            switch (option)
            {
                case Option<int> count:
                    count.Validators.Add(r =>
                    {
                        if (r.Tokens.Count > 0 && int.TryParse(r.Tokens[^1].Value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v < 1)
                        {
                            r.AddError($"{count.Name}: must be a whole number of at least 1 (got {Got(r.Tokens[^1].Value)})");
                        }
                    });
                    break;
                case Option<double> number:
                    number.Validators.Add(r =>
                    {
                        if (r.Tokens.Count > 0 && double.TryParse(r.Tokens[^1].Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v)
                            && !(double.IsFinite(v) && v > 0 && v <= LongestSeconds))
                        {
                            r.AddError($"{number.Name}: must be a number above 0 and at most {LongestSeconds:0} (got {Got(r.Tokens[^1].Value)})");
                        }
                    });
                    break;
                case Option<TimeSpan> duration:
                    duration.Validators.Add(r =>
                    {
                        if (r.Tokens.Count > 0 && TimeSpan.TryParse(r.Tokens[^1].Value, System.Globalization.CultureInfo.InvariantCulture, out var v)
                            && (v <= TimeSpan.Zero || v > Options.Check.LongestDuration))
                        {
                            r.AddError($"{duration.Name}: must be a duration above 0 and at most {Options.Check.LongestDuration:d\\.hh\\:mm\\:ss} such as 00:00:30 (got {Got(r.Tokens[^1].Value)})");
                        }
                    });
                    break;
                default:
                    break;
            }
        }

        foreach (var sub in command.Subcommands)
        {
            RequirePositiveNumbers(sub, seen);
        }
    }

    /// <summary>
    /// A parse error as an admin reads it, one line naming the flag: System.CommandLine's "Cannot parse argument 'x' for
    /// option '--limit' as expected type 'System.Int32'." becomes "--limit: must be a whole number (got "x")", and
    /// "Argument 'x' not recognized. Must be one of: ..." (which does not say for which flag) "--output: must be one of
    /// table, json (got "x")".
    /// </summary>
    public static string Describe(string error, SymbolResult? symbol)
    {
        if (CannotParse().Match(error) is { Success: true } m)
        {
            return $"{m.Groups["name"].Value}: must be {Options.ConfigurationValues.Kind(m.Groups["type"].Value)} (got \"{Got(m.Groups["value"].Value)}\")";
        }

        var name = symbol switch
        {
            OptionResult o => o.Option.Name,
            ArgumentResult { Parent: OptionResult o } => o.Option.Name,
            ArgumentResult a => a.Argument.Name,
            _ => null,
        };
        if (NotRecognized().Match(error) is { Success: true } n && name is not null)
        {
            var allowed = string.Join(", ", n.Groups["list"].Value.Split(['\n', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(a => a.Trim('\'')));
            return $"{name}: must be one of {Output.Escape(allowed)} (got \"{Got(n.Groups["value"].Value)}\")";
        }

        return Output.Escape(AgentHost.CutLine(error)); // an unknown token of 5 MB is not echoed whole
    }

    private static string Got(string value) => Output.Escape(value.Length <= 80 ? value : value[..80] + $"…[cut {value.Length - 80} chars]");

    [System.Text.RegularExpressions.GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (?:option|command|argument) '(?<name>[^']*)' as expected type '(?<type>[^']*)'\.?$", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex CannotParse();

    [System.Text.RegularExpressions.GeneratedRegex(@"^Argument '(?<value>.*)' not recognized\. Must be one of:(?<list>.*)$", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex NotRecognized();

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
