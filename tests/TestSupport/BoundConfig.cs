using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// What a program's own wiring binds from a configuration file: the options it registered, configured by exactly the
/// delegates the daemon runs (no validation, so a shipped example whose certificate paths do not exist here can still
/// be read), and the problems its start-up gate would report.
/// </summary>
public static class BoundConfig
{
    /// <summary>packaging/config/NAME: what the .debs ship and what puppet's templates render.</summary>
    public static string Example(string name) => Path.Combine(Run.RepoRoot, "packaging", "config", name);

    public static T Bind<T>(IServiceProvider services)
        where T : class, new()
    {
        var options = new T();
        foreach (var configure in services.GetServices<IConfigureOptions<T>>())
        {
            configure.Configure(options);
        }

        foreach (var post in services.GetServices<IPostConfigureOptions<T>>())
        {
            post.PostConfigure(Microsoft.Extensions.Options.Options.DefaultName, options);
        }

        return options;
    }

    /// <summary>The problems the program's start-up gate finds (one "Key: reason" each); empty when it would start.</summary>
    public static IReadOnlyList<string> Problems(IServiceProvider services)
    {
        try
        {
            OptionsGate.ValidateAll(services);
            return [];
        }
        catch (OptionsValidationException ex)
        {
            return ex.Failures.ToList();
        }
    }

    /// <summary>
    /// Every JSON array in <paramref name="jsonFile"/> (comments allowed, as the configuration reader allows them)
    /// against the bound value at the same path: its items, in order, and nothing else. <paramref name="section"/>
    /// gives the bound options of a top-level section (null: a section this test does not look at). Returns one line
    /// per difference, and the number of arrays compared.
    /// </summary>
    public static (List<string> Differences, int Lists) CompareLists(string jsonFile, Func<string, object?> section)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(jsonFile), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var differences = new List<string>();
        var lists = 0;
        foreach (var top in doc.RootElement.EnumerateObject())
        {
            if (section(top.Name) is { } bound)
            {
                Walk(top.Value, bound, top.Name, differences, ref lists);
            }
        }

        return (differences, lists);
    }

    private static void Walk(JsonElement json, object bound, string path, List<string> differences, ref int lists)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        foreach (var p in json.EnumerateObject())
        {
            var here = $"{path}:{p.Name}";
            var options = bound;
            if (bound is SectionWithParts withParts)
            {
                var part = withParts.Parts.FirstOrDefault(x => string.Equals(x.Key, p.Name, StringComparison.OrdinalIgnoreCase));
                if (part.Value is not null)
                {
                    Walk(p.Value, part.Value, here, differences, ref lists);
                    continue;
                }

                options = withParts.Options.FirstOrDefault(o => PropertyOf(o, p.Name) is not null) ?? withParts.Options[0];
            }

            var property = PropertyOf(options, p.Name);
            if (property is null)
            {
                differences.Add($"{here}: no such property on {(bound is SectionWithParts all ? string.Join(" or ", all.Options.Select(o => o.GetType().Name)) : options.GetType().Name)}");
                continue;
            }

            var value = property.GetValue(options);
            if (p.Value.ValueKind == JsonValueKind.Array)
            {
                lists++;
                var items = value is IEnumerable e and not string ? e.Cast<object?>().ToList() : null;
                var expected = p.Value.EnumerateArray().ToList();
                if (items is null || items.Count != expected.Count)
                {
                    differences.Add($"{here}: the file says {expected.Count} items [{string.Join(", ", expected.Select(x => x.ToString()))}], bound {(items is null ? "no list" : $"{items.Count} [{string.Join(", ", items)}]")}");
                    continue;
                }

                for (var i = 0; i < items.Count; i++)
                {
                    if (expected[i].ValueKind == JsonValueKind.Object && items[i] is { } item)
                    {
                        Walk(expected[i], item, $"{here}:{i}", differences, ref lists);
                    }
                    else if (Scalar(expected[i]) != Convert.ToString(items[i], CultureInfo.InvariantCulture))
                    {
                        differences.Add($"{here}:{i}: the file says {expected[i]}, bound {items[i]}");
                    }
                }
            }
            else if (p.Value.ValueKind == JsonValueKind.Object && value is not null and not IDictionary)
            {
                Walk(p.Value, value, here, differences, ref lists);
            }
        }
    }

    private static PropertyInfo? PropertyOf(object options, string name) =>
        options.GetType().GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);

    private static string? Scalar(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.True => "True",
        JsonValueKind.False => "False",
        JsonValueKind.Null => null,
        _ => e.GetRawText(),
    };
}

/// <summary>Every list or map property reachable from an options object, with its path and its default items.</summary>
public static class OptionsLists
{
    public sealed record ListOption(string Path, Type Type, IReadOnlyList<object?> Default);

    public static List<ListOption> Find(object options, string section)
    {
        var found = new List<ListOption>();
        Walk(options, section, found, []);
        return found;
    }

    private static void Walk(object options, string path, List<ListOption> found, HashSet<Type> seen)
    {
        if (!seen.Add(options.GetType()))
        {
            return;
        }

        foreach (var p in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var here = $"{path}:{p.Name}";
            if (ConfigurationShape.IsCollection(p.PropertyType))
            {
                var items = p.GetValue(options) switch
                {
                    IDictionary d => d.Keys.Cast<object?>().ToList(),
                    IEnumerable e => e.Cast<object?>().ToList(),
                    _ => [],
                };
                found.Add(new ListOption(here, p.PropertyType, items));
            }
            else if (ConfigurationShape.IsNestedSection(p.PropertyType) && p.GetValue(options) is IValidatedOptions nested)
            {
                Walk(nested, here, found, seen);
            }
        }

        seen.Remove(options.GetType());
    }

    /// <summary>The list (or a map's keys) at <paramref name="relativePath"/> ("Nftables:Arguments") below <paramref name="options"/>.</summary>
    public static IList ListAt(object options, string relativePath)
    {
        object? current = options;
        foreach (var part in relativePath.Split(':'))
        {
            current = current!.GetType().GetProperty(part)!.GetValue(current);
        }

        return current switch
        {
            IDictionary d => d.Keys.Cast<object>().ToList(),
            IList l => l,
            _ => throw new InvalidOperationException($"{relativePath} is not a list"),
        };
    }

    /// <summary>{"A": {"B": {"C": value}}} for the path "A:B:C".</summary>
    public static System.Text.Json.Nodes.JsonObject ConfigAt(string path, System.Text.Json.Nodes.JsonNode? value)
    {
        var parts = path.Split(':');
        System.Text.Json.Nodes.JsonNode? node = value;
        for (var i = parts.Length - 1; i >= 0; i--)
        {
            node = new System.Text.Json.Nodes.JsonObject { [parts[i]] = node };
        }

        return (System.Text.Json.Nodes.JsonObject)node!;
    }
}
