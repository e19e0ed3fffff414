using System.CommandLine;
using System.Globalization;
using System.Text;

namespace Toolforge.Agents.Common.Cli;

/// <summary>
/// Every program's `completion bash|zsh|fish` (a script that asks the program itself what may come next, through
/// System.CommandLine's [suggest] directive: subcommands, flags, their values, and what a command adds, such as
/// agentctl's node names) and its manual page, made from the same command definitions as --help (`man`, hidden; the
/// .debs install its output).
/// </summary>
public static class ShellIntegration
{
    public static void AddTo(RootCommand root, string program)
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        shell.AcceptOnlyFromAmong("bash", "zsh", "fish");
        var completion = new Command("completion", $"Print the shell completion script. bash: source <({program} completion bash), or put it in /etc/bash_completion.d/; "
            + $"zsh: source <({program} completion zsh) after compinit, or save it as _{program} in $fpath; fish: {program} completion fish > ~/.config/fish/completions/{program}.fish") { shell };
        completion.SetAction(pr =>
        {
            Console.Out.Write(Script(program, pr.GetValue(shell)!));
            return 0;
        });
        root.Subcommands.Add(completion);

        var man = new Command("man", "Print the manual page (roff)") { Hidden = true };
        man.SetAction(pr =>
        {
            Console.Out.Write(ManPage(root, program));
            return 0;
        });
        root.Subcommands.Add(man);
    }

    public static string Script(string program, string shell)
    {
        var fn = "_" + new string(program.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        return shell switch
        {
            "bash" => $$"""
                # bash completion for {{program}}: asks {{program}} itself ([suggest] directive). The candidates are
                # matched as plain text and never expanded by the shell (no compgen -W, no unquoted $(...)).
                {{fn}}() {
                    local cur="${COMP_WORDS[COMP_CWORD]}" line
                    COMPREPLY=()
                    while IFS= read -r line; do
                        [[ "$line" == "$cur"* ]] && COMPREPLY+=("$line")
                    done < <("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)
                }
                complete -o default -F {{fn}} {{program}}

                """,
            "zsh" => $$"""
                #compdef {{program}}
                # zsh completion for {{program}}: asks {{program}} itself ([suggest] directive). Either source it after
                # compinit (source <({{program}} completion zsh)) or save it as _{{program}} in a directory of $fpath.
                # compadd inserts each candidate as text (quoted): a candidate is never run.
                {{fn}}() {
                    local -a completions
                    completions=(${(f)"$("${words[1]}" "[suggest:${CURSOR}]" "${BUFFER}" 2>/dev/null)"})
                    compadd -a completions
                }
                if [[ "${funcstack[1]}" == "_{{program}}" || "${funcstack[1]}" == "{{fn}}" ]]; then
                    {{fn}} "$@"
                else
                    compdef {{fn}} {{program}}
                fi

                """,
            "fish" => $$"""
                # fish completion for {{program}}: asks {{program}} itself ([suggest] directive).
                complete -c {{program}} -f -a '({{program}} "[suggest:"(string length -- (commandline -cp))"]" (commandline -cp) 2>/dev/null)'

                """,
            _ => throw new ArgumentOutOfRangeException(nameof(shell)),
        };
    }

    /// <summary>The manual page, section 1 (section 8 for the daemons is what Debian would prefer; 1 keeps one form for all).</summary>
    public static string ManPage(RootCommand root, string program)
    {
        var sb = new StringBuilder();
        // SOURCE_DATE_EPOCH (set by the package build) keeps the page, and the .deb, reproducible.
        var date = (long.TryParse(Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH"), NumberStyles.None, CultureInfo.InvariantCulture, out var epoch)
            ? DateTimeOffset.FromUnixTimeSeconds(epoch) : DateTimeOffset.UtcNow).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        sb.Append(CultureInfo.InvariantCulture, $".TH {Roff(program.ToUpperInvariant())} 1 {date} \"toolforge-agents {Hosting.DaemonInfo.Version}\" \"Toolforge admin tools\"\n");
        sb.Append(".SH NAME\n").Append(Roff(program)).Append(" \\- ").Append(Roff(FirstSentence(root.Description))).Append('\n');
        sb.Append(".SH SYNOPSIS\n.B ").Append(Roff(program)).Append("\n[\\fIoptions\\fR] [\\fIcommand\\fR] [\\fIarguments\\fR]\n");
        sb.Append(".SH DESCRIPTION\n").Append(Roff(root.Description ?? string.Empty)).Append('\n');
        Options(sb, root);
        var commands = root.Subcommands.Where(c => !c.Hidden).ToList();
        if (commands.Count > 0)
        {
            sb.Append(".SH COMMANDS\n");
            foreach (var c in commands)
            {
                Command(sb, c, program);
            }
        }

        sb.Append(".SH EXIT STATUS\n");
        sb.Append(".TP\n.B 0\nok\n.TP\n.B 1\nran and found something wrong: a failing check, a finding, a failed build or delivery\n");
        sb.Append(".TP\n.B 2\nbad usage or bad input: an unknown flag, a file that is not what it should be\n");
        sb.Append(".TP\n.B 78\nbad configuration (the systemd units do not restart on it)\n");
        sb.Append(".SH FILES\n.TP\n.I /etc/toolforge-agents/\nthe daemons' configuration files (see /usr/share/doc/toolforge-*/)\n");
        sb.Append(".SH SEE ALSO\n").Append(Roff($"{program} --help; {program} completion bash")).Append('\n');
        return sb.ToString();
    }

    private static void Command(StringBuilder sb, Command c, string path)
    {
        var args = string.Join(' ', c.Arguments.Where(a => !a.Hidden).Select(a => a.Arity.MaximumNumberOfValues > 1 ? $"{a.Name.ToUpperInvariant()}..." : a.Name.ToUpperInvariant()));
        sb.Append(".SS \"").Append(Roff($"{path} {c.Name}")).Append(args.Length > 0 ? " " + Roff(args) : string.Empty).Append("\"\n");
        sb.Append(Roff(c.Description ?? string.Empty)).Append('\n');
        foreach (var o in c.Options.Where(o => !o.Hidden && o.Name is not "--help"))
        {
            sb.Append(".TP\n.B ").Append(Roff(string.Join(", ", new[] { o.Name }.Concat(o.Aliases.Where(a => a.StartsWith('-')))))).Append('\n')
              .Append(Roff(o.Description ?? string.Empty)).Append('\n');
        }

        foreach (var sub in c.Subcommands.Where(s => !s.Hidden))
        {
            Command(sb, sub, $"{path} {c.Name}");
        }
    }

    private static void Options(StringBuilder sb, Command root)
    {
        var options = root.Options.Where(o => !o.Hidden && o.Name is not ("--help" or "--version")).ToList();
        if (options.Count == 0)
        {
            return;
        }

        sb.Append(".SH OPTIONS\n");
        foreach (var o in options)
        {
            sb.Append(".TP\n.B ").Append(Roff(o.Name)).Append('\n').Append(Roff(o.Description ?? string.Empty)).Append('\n');
        }
    }

    private static string FirstSentence(string? s)
    {
        s ??= string.Empty;
        var colon = s.IndexOf(": ", StringComparison.Ordinal);
        var text = colon > 0 && colon < 40 ? s[(colon + 2)..] : s;
        var dot = text.IndexOf(". ", StringComparison.Ordinal);
        return dot > 0 ? text[..dot] : text.TrimEnd('.');
    }

    // roff: backslashes escaped, a line never starts with a control character, hyphens of flags kept as minus signs.
    private static string Roff(string s)
    {
        var text = s.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal);
        return string.Join("\n", text.Split('\n').Select(l => l.StartsWith('.') || l.StartsWith('\'') ? "\\&" + l : l));
    }
}
