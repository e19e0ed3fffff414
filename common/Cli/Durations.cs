using System.Globalization;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.Common.Cli;

/// <summary>
/// Durations as admins type them on a command line, the way kubectl and Go do: <c>90s</c>, <c>30m</c>, <c>2h</c>,
/// <c>1h30m</c>, <c>7d</c>; also .NET's <c>02:00:00</c>, the form configuration files use.
/// </summary>
public static partial class Durations
{
    [GeneratedRegex(@"^(?:(\d{1,5})d)?(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex Units();

    /// <summary>The duration <paramref name="text"/> gives, or null when it is not one.</summary>
    public static TimeSpan? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        text = text.Trim();
        if (Units().Match(text) is { Success: true } m && text.Length > 0)
        {
            long Part(int i) => m.Groups[i].Success ? long.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture) : 0;
            return TimeSpan.FromDays(Part(1)) + TimeSpan.FromHours(Part(2)) + TimeSpan.FromMinutes(Part(3)) + TimeSpan.FromSeconds(Part(4));
        }

        return text.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var t) ? t : null;
    }

    /// <summary>Short and readable: 2h, 1h30m, 45s, 3d4h.</summary>
    public static string Format(TimeSpan t)
    {
        if (t < TimeSpan.FromSeconds(1))
        {
            return "0s";
        }

        var parts = new List<string>(4);
        if (t.Days > 0)
        {
            parts.Add(t.Days.ToString(CultureInfo.InvariantCulture) + "d");
        }

        if (t.Hours > 0)
        {
            parts.Add(t.Hours.ToString(CultureInfo.InvariantCulture) + "h");
        }

        if (t.Minutes > 0)
        {
            parts.Add(t.Minutes.ToString(CultureInfo.InvariantCulture) + "m");
        }

        if (t.Seconds > 0 && t < TimeSpan.FromHours(1))
        {
            parts.Add(t.Seconds.ToString(CultureInfo.InvariantCulture) + "s");
        }

        return string.Concat(parts);
    }
}
