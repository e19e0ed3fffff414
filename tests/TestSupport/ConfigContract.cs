using System.Collections;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// The configuration contract every program keeps, checked through the program's own wiring (<paramref name="build"/>:
/// a configuration file's path to the host the daemon would build from it). Each method returns what is wrong, one
/// line each; a test asserts the list is empty.
/// </summary>
public sealed class ConfigContract(string program, Func<string, IHost> build)
{
    /// <summary>Builds the host from <paramref name="config"/> and hands its services to <paramref name="read"/>.</summary>
    public TResult With<TResult>(JsonObject config, Func<IServiceProvider, TResult> read)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["config.json"], config.ToJsonString());
        return WithFile(dir["config.json"], read);
    }

    public TResult WithFile<TResult>(string path, Func<IServiceProvider, TResult> read)
    {
        using var host = build(path);
        return read(host.Services);
    }

    /// <summary>Every list the shipped example sets is bound exactly as written; its only problems are files this host lacks.</summary>
    public List<string> ExampleProblems(string example, Func<IServiceProvider, Func<string, object?>> sections, int minimumLists) =>
        FileProblems(BoundConfig.Example(example), example, sections, minimumLists);

    /// <summary>
    /// As <see cref="ExampleProblems"/>, for any configuration file (what puppet renders, <see cref="PuppetModule"/>):
    /// every list bound exactly as written, no problem but files this host lacks. <paramref name="label"/> starts each line.
    /// </summary>
    public List<string> FileProblems(string path, string label, Func<IServiceProvider, Func<string, object?>> sections, int minimumLists)
    {
        return WithFile(path, services =>
        {
            var (differences, lists) = BoundConfig.CompareLists(path, sections(services));
            if (lists < minimumLists)
            {
                differences.Add($"{label}: only {lists} lists compared, expected at least {minimumLists}");
            }

            differences.AddRange(BoundConfig.Problems(services).Where(p => !p.Contains("does not exist", StringComparison.Ordinal)).Select(p => $"{label}: {p}"));
            return differences;
        });
    }

    /// <summary>Every list option with a default: [] binds empty, one item binds exactly that item.</summary>
    public List<string> ListsReplaced<T>(T defaults, string section, Func<IServiceProvider, T> bind)
        where T : class
    {
        var wrong = new List<string>();
        foreach (var list in OptionsLists.Find(defaults, section).Where(l => l.Default.Count > 0))
        {
            var empty = Lookup(With(OptionsLists.ConfigAt(list.Path, new JsonArray()), bind), section, list.Path);
            if (empty.Count != 0)
            {
                wrong.Add($"{list.Path}: [] bound as [{string.Join(", ", empty)}]");
            }

            var one = list.Default[^1]?.ToString();
            var single = Lookup(With(OptionsLists.ConfigAt(list.Path, new JsonArray(JsonValue.Create(one))), bind), section, list.Path);
            if (single.Count != 1 || single[0]?.ToString() != one)
            {
                wrong.Add($"{list.Path}: [\"{one}\"] bound as [{string.Join(", ", single)}]");
            }
        }

        return wrong;
    }

    /// <summary>Every list option written as a string is a problem naming it.</summary>
    public List<string> StringForEveryList<T>(T defaults, string section)
        where T : class
    {
        var missed = new List<string>();
        foreach (var list in OptionsLists.Find(defaults, section).Where(l => !typeof(IDictionary).IsAssignableFrom(l.Type)))
        {
            var problems = With(OptionsLists.ConfigAt(list.Path, "admin.example"), BoundConfig.Problems);
            if (!problems.Any(p => p.StartsWith($"{list.Path}: must be a list, not the single value \"admin.example\"", StringComparison.Ordinal)))
            {
                missed.Add($"{list.Path}: {string.Join(" | ", problems)}");
            }
        }

        return missed;
    }

    /// <summary>Runs the program on <paramref name="config"/>: it must stop with exit 78 and one line holding <paramref name="expected"/>.</summary>
    public async Task<string?> StopsWithOneLineAsync(JsonObject config, string expected, IEnumerable<string>? args = null, IDictionary<string, string>? env = null)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["config.json"], config.ToJsonString());
        var r = await Run.DotnetToolAsync(program, [.. args ?? [], "--config", dir["config.json"]], TimeSpan.FromSeconds(30), env);
        return OneConfigLine(program, r, expected);
    }

    /// <summary>
    /// Null when <paramref name="r"/> is a program stopped by its configuration as every program must be: exit 78, one
    /// line "PROGRAM: invalid configuration: ..." holding <paramref name="expected"/>, no stack trace, no .NET type name;
    /// else what is wrong.
    /// </summary>
    public static string? OneConfigLine(string program, ProcessResult r, string expected)
    {
        var lines = r.Stderr.Trim().Split('\n');
        return r.ExitCode != ExitCodes.Config ? $"exit {r.ExitCode}: {r.Stderr}\n{r.Stdout}"
            : lines.Length != 1 ? $"{lines.Length} lines: {r.Stderr}"
            : !lines[0].StartsWith($"{program}: invalid configuration:", StringComparison.Ordinal) || !lines[0].Contains(expected, StringComparison.Ordinal) ? $"not \"{expected}\": {lines[0]}"
            : r.Stderr.Contains("   at ", StringComparison.Ordinal) ? $"a stack trace: {r.Stderr}"
            : lines[0].Contains("System.", StringComparison.Ordinal) ? $"a .NET type name: {lines[0]}"
            : null;
    }

    // The list below the options type bound at `section` (which may itself be nested: "Builder:Promotion").
    private static IList Lookup(object options, string section, string path) => OptionsLists.ListAt(options, path[(section.Length + 1)..]);
}
