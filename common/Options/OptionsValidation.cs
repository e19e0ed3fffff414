using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>
/// An options class that checks itself. Each problem is one string "Section:Key: reason", so an admin
/// reading the daemon's single error line knows which key in the JSON file to fix.
/// </summary>
public interface IValidatedOptions
{
    IEnumerable<string> Validate(string section);
}

/// <summary>Small helpers that build the "Key: reason" strings the same way everywhere.</summary>
public static class Check
{
    public static string Key(string section, string key) => section.Length == 0 ? key : $"{section}:{key}";

    public static IEnumerable<string> Port(string section, string key, int value, bool allowZero = false)
    {
        if (value < (allowZero ? 0 : 1) || value > 65535)
        {
            yield return $"{Key(section, key)}: must be a TCP port between {(allowZero ? 0 : 1)} and 65535 (got {value})";
        }
    }

    public static IEnumerable<string> Positive(string section, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            yield return $"{Key(section, key)}: must be a positive duration such as \"00:00:30\" (got {value})";
        }
    }

    public static IEnumerable<string> Range(string section, string key, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            yield return $"{Key(section, key)}: must be between {min} and {max} (got {value})";
        }
    }

    public static IEnumerable<string> Required(string section, string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            yield return $"{Key(section, key)}: is required";
        }
    }

    public static IEnumerable<string> FileExists(string section, string key, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            yield return $"{Key(section, key)}: is required";
        }
        else if (!File.Exists(path))
        {
            yield return $"{Key(section, key)}: file {path} does not exist";
        }
    }

    public static IEnumerable<string> OneOf(string section, string key, string? value, params string[] allowed)
    {
        if (value is null || !allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
        {
            yield return $"{Key(section, key)}: must be one of {string.Join(", ", allowed)} (got \"{value}\")";
        }
    }
}

internal sealed class SelfValidatingOptions<T>(IConfigurationSection section) : IValidateOptions<T>
    where T : class, IValidatedOptions
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var failures = UnknownKeys.Find(section, typeof(T)).Concat(options.Validate(section.Path)).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Finds keys in a configuration section that no property of the options type takes: typos from puppet.</summary>
public static class UnknownKeys
{
    public static IEnumerable<string> Find(IConfigurationSection section, Type type)
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

            if (!IsScalar(property.PropertyType))
            {
                foreach (var problem in Find(child, property.PropertyType))
                {
                    yield return problem;
                }
            }
        }
    }

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

public static class OptionsRegistration
{
    /// <summary>
    /// Binds <typeparamref name="T"/> to <paramref name="section"/>, rejects unknown keys (a typo from puppet is an
    /// error, not a silently ignored setting) and validates it when the host starts.
    /// </summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class, IValidatedOptions
    {
        var configSection = configuration.GetSection(section);
        services.AddSingleton<IValidateOptions<T>>(new SelfValidatingOptions<T>(configSection));
        services.AddSingleton(new ValidatedOptionsEntry(typeof(T), sp => _ = sp.GetRequiredService<IOptions<T>>().Value));
        return services.AddOptions<T>()
            .Bind(configSection)
            .ValidateOnStart();
    }
}

/// <summary>One options type registered with <see cref="OptionsRegistration.AddValidatedOptions{T}"/>.</summary>
public sealed record ValidatedOptionsEntry(Type Type, Action<IServiceProvider> Resolve);

public static class OptionsGate
{
    /// <summary>
    /// Resolves every validated options type and throws one <see cref="OptionsValidationException"/> with all the
    /// problems found, so an admin fixes the whole file in one go rather than one key per restart.
    /// </summary>
    public static void ValidateAll(IServiceProvider services)
    {
        var failures = new List<string>();
        foreach (var entry in services.GetServices<ValidatedOptionsEntry>())
        {
            try
            {
                entry.Resolve(services);
            }
            catch (OptionsValidationException ex)
            {
                failures.AddRange(ex.Failures);
            }
            catch (InvalidOperationException ex) when (ex.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
            {
                failures.Add(ex.Message);
            }
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(string.Empty, typeof(object), failures);
        }
    }
}
