using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Toolforge.Agents.Common.Options;

/// <summary>
/// Makes a configuration section bind exactly as it is written, and names what does not fit its options type.
/// <list type="bullet">
/// <item><see cref="ClearNamedCollections"/>, before the binder runs: every list or map the section names is emptied,
/// so the file's list replaces the default instead of being appended to it (the configuration binder adds to a list
/// that already holds the defaults). A list written empty (<c>[]</c>) is then empty.</item>
/// <item><see cref="Problems"/>, after it: keys no property takes (typos from puppet), and values of the wrong JSON
/// kind — a string where a list or a section belongs (<c>"Admins": "admin.test"</c> would otherwise be dropped), an
/// object or a list where a single value belongs.</item>
/// </list>
/// It walks the bound options object, not just its type: a nested section's value is asked for its type
/// (<c>GetType()</c> on an <see cref="IValidatedOptions"/>, whose annotation keeps every implementing type's public
/// properties), the one form the NativeAOT compiler follows. A walk from a property's declared type finds no
/// properties in a native binary: every nested key would read "unknown" and the daemon would refuse to start.
/// </summary>
public static class ConfigurationShape
{
    /// <summary>Empties every list and map of <paramref name="options"/> that <paramref name="section"/> names, at every depth.</summary>
    public static void ClearNamedCollections(IConfiguration section, IValidatedOptions options)
    {
        var properties = Properties(options);
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                continue;
            }

            var value = property.GetValue(options);
            switch (value)
            {
                case string:
                    break;
                case IValidatedOptions nested when IsNestedSection(property.PropertyType):
                    ClearNamedCollections(child, nested);
                    break;
                case Array array when array.Length > 0 && property.CanWrite:
                    property.SetValue(options, Array.CreateInstanceFromArrayType(array.GetType(), 0));
                    break;
                case IList { IsFixedSize: false, IsReadOnly: false } list:
                    list.Clear();
                    break;
                case IDictionary { IsReadOnly: false } map:
                    map.Clear();
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>
    /// Unknown keys and values of the wrong kind, each as "Path: reason". <paramref name="ownedElsewhere"/>: paths of
    /// sections other options types bind and check (a feature's section below this one), passed over here.
    /// </summary>
    public static IEnumerable<string> Problems(IConfigurationSection section, IValidatedOptions options, IReadOnlyCollection<string>? ownedElsewhere = null)
    {
        // The section itself written as one value ("Kubelet": "on"): the outer type passes a feature's own section over,
        // so this is where it is named.
        if (section.Value is { Length: > 0 } value && !section.GetChildren().Any())
        {
            yield return $"{section.Path}: must be an object (a section), not the single value \"{Cut(value)}\"{FromEnvironment(section.Path)}";
            yield break;
        }

        var properties = Properties(options);
        foreach (var child in section.GetChildren())
        {
            if (ownedElsewhere?.Contains(child.Path, StringComparer.OrdinalIgnoreCase) == true)
            {
                continue;
            }

            if (!properties.TryGetValue(child.Key, out var property))
            {
                // The sections other types own here are known keys too (NodeAgent's Kubelet, Nftables, ...).
                var owned = ownedElsewhere?.Where(p => p.StartsWith(section.Path + ":", StringComparison.OrdinalIgnoreCase) && !p[(section.Path.Length + 1)..].Contains(':', StringComparison.Ordinal))
                    .Select(p => p[(section.Path.Length + 1)..]) ?? [];
                var known = string.Join(", ", properties.Keys.Concat(owned).Order(StringComparer.Ordinal));
                yield return $"{child.Path}: unknown key{FromEnvironment(child.Path)} (known keys here: {known})";
                continue;
            }

            foreach (var problem in Problems(child, property.PropertyType, property.GetValue(options)))
            {
                yield return problem;
            }
        }
    }

    /// <summary>Keys at the root that no options section of the program takes: a misspelt section is not ignored.</summary>
    public static IEnumerable<string> UnknownSections(IConfiguration root, IReadOnlyCollection<string> sections)
    {
        foreach (var child in root.GetChildren())
        {
            if (!sections.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                yield return $"{child.Key}: unknown section{FromEnvironment(child.Path)} (sections here: {string.Join(", ", sections.Order(StringComparer.Ordinal))})";
            }
        }
    }

    private static IEnumerable<string> Problems(IConfigurationSection child, Type declared, object? value)
    {
        var hasChildren = child.GetChildren().Any();
        if (IsScalar(declared))
        {
            if (hasChildren)
            {
                yield return $"{child.Path}: must be a single value, not {(IsList(child) ? "a list" : "an object")}{FromEnvironment(child.Path)}";
            }

            yield break;
        }

        // A list, a map or a section written as one value. An empty string is an empty list or map (the only way a
        // TOOLFORGE_ variable can say so); JSON's [] and {} arrive with no value at all.
        if (!hasChildren && child.Value is { Length: > 0 } scalar)
        {
            var kind = IsOpenEnded(declared) ? (IsDictionary(declared) ? "an object of names and values" : "a list") : "an object (a section)";
            yield return $"{child.Path}: must be {kind}, not the single value \"{Cut(scalar)}\"{FromEnvironment(child.Path)}";
            yield break;
        }

        if (IsNestedSection(declared))
        {
            switch (value)
            {
                case IValidatedOptions nested:
                    foreach (var problem in Problems(child, nested))
                    {
                        yield return problem;
                    }

                    break;
                case null:
                    break;
                default:
                    // A programming error that OptionsShapeTests catches.
                    yield return $"{child.Path}: cannot be checked ({declared.Name} is not IValidatedOptions)";
                    break;
            }

            yield break;
        }

        if (IsDictionary(declared))
        {
            // Maps take any names; their values are checked where they are sections of a known type.
            foreach (var entry in child.GetChildren())
            {
                if (value is IDictionary map && map.Contains(entry.Key) && map[entry.Key] is IValidatedOptions nested)
                {
                    foreach (var problem in Problems(entry, nested))
                    {
                        yield return problem;
                    }
                }
            }

            yield break;
        }

        // A list: its items are single values, or sections of the element type (paired in order with what was bound).
        var items = child.GetChildren().ToList();
        var bound = (value as IEnumerable)?.Cast<object?>().ToList() ?? [];
        for (var i = 0; i < items.Count; i++)
        {
            var item = bound.Count == items.Count ? bound[i] : null;
            if (item is IValidatedOptions nested)
            {
                if (items[i].Value is { Length: > 0 } itemValue)
                {
                    yield return $"{items[i].Path}: must be an object (a section), not the single value \"{Cut(itemValue)}\"";
                    continue;
                }

                foreach (var problem in Problems(items[i], nested))
                {
                    yield return problem;
                }
            }
            else if (item is null or string || IsScalar(item.GetType()))
            {
                if (items[i].GetChildren().Any() && !ElementIsSection(declared))
                {
                    yield return $"{items[i].Path}: must be a single value, not {(IsList(items[i]) ? "a list" : "an object")}";
                }
            }
        }
    }

    /// <summary>Whether a property of this type is walked as a nested section (not a value, a list or a map).</summary>
    public static bool IsNestedSection(Type t) => !IsScalar(t) && !IsOpenEnded(t);

    /// <summary>Whether a property of this type is a list, an array or a map (replaced as a whole when configured).</summary>
    public static bool IsCollection(Type t) => IsOpenEnded(t);

    /// <summary>The keys an options type takes: its settable properties and its nested sections.</summary>
    public static IReadOnlyCollection<string> KeysOf([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type) =>
        Properties(type).Keys.ToList();

    private static Dictionary<string, PropertyInfo> Properties(IValidatedOptions options) => Properties(options.GetType());

    private static Dictionary<string, PropertyInfo> Properties([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite || !IsScalar(p.PropertyType))
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    private static bool IsScalar(Type t)
    {
        var u = Nullable.GetUnderlyingType(t) ?? t;
        return u.IsPrimitive || u.IsEnum || u == typeof(string) || u == typeof(decimal) || u == typeof(TimeSpan)
            || u == typeof(DateTimeOffset) || u == typeof(DateTime) || u == typeof(Uri) || u == typeof(Guid);
    }

    // Lists, arrays and dictionaries take any keys (indexes or names).
    private static bool IsOpenEnded(Type t) =>
        t.IsArray || (t != typeof(string) && typeof(IEnumerable).IsAssignableFrom(t));

    private static bool IsDictionary(Type t) => typeof(IDictionary).IsAssignableFrom(t);

    // The element type is known from the declared type only where NativeAOT keeps the generic arguments (it always
    // keeps them for the closed generic types it compiled); when unknown, an object item is let through to the binder.
    private static bool ElementIsSection(Type list)
    {
        var element = list.IsArray ? list.GetElementType() : list.IsGenericType ? list.GetGenericArguments().FirstOrDefault() : null;
        return element is null || !IsScalar(element);
    }

    // A JSON array arrives as children named 0, 1, 2...
    private static bool IsList(IConfigurationSection s) => s.GetChildren().All(c => int.TryParse(c.Key, out _));

    private static string Cut(string value) => value.Length <= 80 ? value : $"{value[..80]}…[cut {value.Length - 80} chars]";

    /// <summary>" (from the environment variable TOOLFORGE_A__B)" when one set this path or a key below it.</summary>
    private static string FromEnvironment(string path)
    {
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if (e.Key is string name && name.StartsWith(Hosting.AgentHost.EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            {
                var key = name[Hosting.AgentHost.EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal);
                if (key.Equals(path, StringComparison.OrdinalIgnoreCase) || key.StartsWith(path + ":", StringComparison.OrdinalIgnoreCase))
                {
                    return $" (from the environment variable {name})";
                }
            }
        }

        return string.Empty;
    }
}
