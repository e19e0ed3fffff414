using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>Finds keys in a configuration section that no property of the options type takes: typos from puppet.</summary>
public static class UnknownKeys
{
    public static IEnumerable<string> Find(IConfigurationSection section, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type)
    {
        if (IsOpenEnded(type))
        {
            yield break;
        }

        var properties = type.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
            .Where(p => p.CanWrite || !IsScalar(p.PropertyType))
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                var known = string.Join(", ", properties.Keys.Order(StringComparer.Ordinal));
                yield return $"{child.Path}: unknown key (known keys here: {known})";
                continue;
            }

            if (IsNestedSection(property.PropertyType))
            {
                foreach (var problem in Find(child, Section(property)))
                {
                    yield return problem;
                }
            }
        }
    }

    /// <summary>Whether a property of this type is walked as a nested section (not a value, a list or a map).</summary>
    public static bool IsNestedSection(Type t) => !IsScalar(t) && !IsOpenEnded(t);

    // A nested section's type implements IValidatedOptions, whose annotation keeps its public properties in a trimmed
    // binary (Packaging.Tests checks every options type of every program for it). Were one missed, its keys would all be
    // reported unknown and the daemon would refuse to start: loud, never a silently unchecked section.
    [UnconditionalSuppressMessage("Trimming", "IL2073", Justification = "Nested section types implement IValidatedOptions (annotated); checked by Packaging.Tests OptionsShapeTests.")]
    [return: DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)]
    private static Type Section(System.Reflection.PropertyInfo property) => property.PropertyType;

    private static bool IsScalar(Type t)
    {
        var u = Nullable.GetUnderlyingType(t) ?? t;
        return u.IsPrimitive || u.IsEnum || u == typeof(string) || u == typeof(decimal) || u == typeof(TimeSpan)
            || u == typeof(DateTimeOffset) || u == typeof(DateTime) || u == typeof(Uri) || u == typeof(Guid);
    }

    // Lists, arrays and dictionaries take any keys (indexes or names).
    private static bool IsOpenEnded(Type t) =>
        t.IsArray || (t != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(t));
}
