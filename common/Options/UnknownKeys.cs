using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>
/// Finds keys in a configuration section that no property of the options takes: typos from puppet. It walks the
/// bound options object, not just its type: a nested section's value is asked for its type (<c>GetType()</c> on an
/// <see cref="IValidatedOptions"/>, whose annotation keeps every implementing type's public properties), which is the
/// one form the NativeAOT compiler follows. A walk from a property's declared type (<c>PropertyType</c>) finds no
/// properties in a native binary: every nested key would read "unknown" and the daemon would refuse to start.
/// </summary>
public static class UnknownKeys
{
    public static IEnumerable<string> Find(IConfigurationSection section, IValidatedOptions options)
    {
        var properties = options.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
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

            if (!IsNestedSection(property.PropertyType))
            {
                continue;
            }

            // Bound already: a section present in the configuration has its object (the binder made it if the
            // options did not). One that is not IValidatedOptions is a programming error OptionsShapeTests catches.
            switch (property.GetValue(options))
            {
                case IValidatedOptions nested:
                    foreach (var problem in Find(child, nested))
                    {
                        yield return problem;
                    }

                    break;
                case null:
                    break;
                default:
                    yield return $"{child.Path}: cannot be checked ({property.PropertyType.Name} is not IValidatedOptions)";
                    break;
            }
        }
    }

    /// <summary>Whether a property of this type is walked as a nested section (not a value, a list or a map).</summary>
    public static bool IsNestedSection(Type t) => !IsScalar(t) && !IsOpenEnded(t);

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
