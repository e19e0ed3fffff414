using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

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

    /// <summary>A file the program replaces (<see cref="Files.DurableFile"/>): a regular file or nothing must be there.</summary>
    public static IEnumerable<string> ReplaceableFile(string section, string key, string? path)
    {
        if (!string.IsNullOrWhiteSpace(path) && Files.DurableFile.Problem(path) is { } problem)
        {
            yield return $"{Key(section, key)}: {problem}";
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
