using System.Text.RegularExpressions;

namespace Toolforge.Agents.Common.Options;

/// <summary>
/// Turns the configuration binder's "Failed to convert configuration value at 'A:B' to type 'System.TimeSpan'" into
/// a line an admin reads without .NET's type names: "A:B: must be a duration such as "00:00:30" (got "5 minutes")".
/// </summary>
public static partial class ConfigurationValues
{
    public static string? DescribeConversion(InvalidOperationException ex)
    {
        if (!ex.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
        {
            return null;
        }

        var m = Conversion().Match(ex.Message);
        if (!m.Success)
        {
            return ex.Message;
        }

        var value = m.Groups["value"].Success ? m.Groups["value"].Value : null;
        var got = value is null ? string.Empty : $" (got \"{(value.Length <= 80 ? value : value[..80] + $"…[cut {value.Length - 80} chars]")}\")";
        return $"{m.Groups["path"].Value}: must be {Kind(m.Groups["type"].Value)}{got}";
    }

    /// <summary>What a value of this .NET type is called in a configuration file.</summary>
    public static string Kind(string typeName)
    {
        var t = NullableOf().Match(typeName) is { Success: true } n ? n.Groups[1].Value : typeName;
        return t switch
        {
            "System.TimeSpan" => "a duration such as \"00:00:30\"",
            "System.Boolean" => "true or false",
            "System.Int32" or "System.Int64" or "System.Int16" => "a whole number",
            "System.UInt32" or "System.UInt64" or "System.UInt16" or "System.Byte" => "a whole number, 0 or more",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.Uri" => "a URL",
            "System.DateTimeOffset" or "System.DateTime" => "a date and time such as \"2026-01-31T12:00:00Z\"",
            _ when t.Contains('.', StringComparison.Ordinal) => $"one of the values this key takes (see the README)",
            _ => "a valid value",
        };
    }

    [GeneratedRegex(@"(?:value '(?<value>.*)' )?at '(?<path>[^']*)' to type '(?<type>[^']*)'", RegexOptions.Singleline)]
    private static partial Regex Conversion();

    [GeneratedRegex(@"^System\.Nullable`1\[(.+)\]$")]
    private static partial Regex NullableOf();
}
