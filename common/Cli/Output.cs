using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Toolforge.Agents.Common.Cli;

public enum OutputFormat
{
    Table,
    Json,
    Yaml,
}

/// <summary>Output helpers shared by agentctl and the agents' admin commands.</summary>
public static class Output
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static OutputFormat Parse(string? text) => text?.ToLowerInvariant() switch
    {
        null or "" or "table" => OutputFormat.Table,
        "json" => OutputFormat.Json,
        "yaml" => OutputFormat.Yaml,
        _ => throw new ArgumentException($"-o: unknown output format \"{text}\" (use table, json or yaml)"),
    };

    /// <summary>Whether colour may be used: only on a terminal, and never when NO_COLOR is set.</summary>
    public static bool UseColour => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null
        && Environment.GetEnvironmentVariable("TERM") is not "dumb";

    public static string Colour(string text, string state)
    {
        if (!UseColour)
        {
            return text;
        }

        var code = state.ToLowerInvariant() switch
        {
            "ok" or "succeeded" or "built" or "pushed" or "unchanged" => "32",
            "warning" or "stale" or "queued" or "running" or "skipped" => "33",
            "failing" or "failed" or "missing" or "push-failed" => "31",
            _ => null,
        };
        return code is null ? text : $"\u001b[{code}m{text}\u001b[0m";
    }

    /// <summary>
    /// Text that came from a node or a tenant, made safe for a terminal: control characters (C0, DEL, C1) become
    /// <c>\xNN</c> and the Unicode direction overrides <c>\u{NNNN}</c>, so an escape sequence in a check's message is
    /// shown, never obeyed.
    /// </summary>
    public static string Escape(string s)
    {
        var i = 0;
        while (i < s.Length && !NeedsEscape(s[i]))
        {
            i++;
        }

        if (i == s.Length)
        {
            return s;
        }

        var sb = new StringBuilder(s.Length + 16).Append(s, 0, i);
        for (; i < s.Length; i++)
        {
            var c = s[i];
            if (!NeedsEscape(c))
            {
                sb.Append(c);
            }
            else if (c <= '\u00ff')
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\u{{{(int)c:x4}}}");
            }
        }

        return sb.ToString();
    }

    /// <summary>Control characters and the invisible direction controls (Trojan Source), which a terminal acts on.</summary>
    public static bool NeedsEscape(char c) =>
        c < ' ' || c is >= '\u007f' and < '\u00a0' || c is '\u061c' or '\u200e' or '\u200f' or >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';

    /// <summary>
    /// A plain table: a header row and aligned columns; the last column is cut so a row fits in
    /// <paramref name="width"/> columns. <paramref name="colourColumn"/> is coloured by its own value.
    /// </summary>
    public static string Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows, int width = 100, int colourColumn = -1)
    {
        var all = rows.Select(r => (IReadOnlyList<string>)r.Select(Escape).ToList()).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => i < r.Count ? r[i].Length : 0))).ToArray();
        var fixedWidth = widths.Take(widths.Length - 1).Sum() + (2 * (widths.Length - 1));
        widths[^1] = Math.Max(headers[^1].Length, Math.Min(widths[^1], width - fixedWidth));
        var sb = new StringBuilder();
        AppendRow(sb, headers, widths, -1);
        foreach (var r in all)
        {
            AppendRow(sb, r, widths, colourColumn);
        }

        return sb.ToString();
    }

    private static void AppendRow(StringBuilder sb, IReadOnlyList<string> cells, int[] widths, int colourColumn)
    {
        for (var i = 0; i < widths.Length; i++)
        {
            var cell = i < cells.Count ? cells[i] : string.Empty;
            if (cell.Length > widths[i])
            {
                cell = widths[i] > 1 ? cell[..(widths[i] - 1)] + "…" : cell[..widths[i]];
            }

            var padded = i == widths.Length - 1 ? cell : cell.PadRight(widths[i]);
            sb.Append(i == colourColumn ? Colour(padded, cell.Trim()) : padded);
            if (i < widths.Length - 1)
            {
                sb.Append("  ");
            }
        }

        sb.Append('\n');
    }

    public static string Json(JsonNode? node) => (node?.ToJsonString(Indented) ?? "null") + "\n";

    /// <summary>YAML for a JSON document (block style; strings quoted when they would be read as something else).</summary>
    public static string Yaml(JsonNode? node)
    {
        var sb = new StringBuilder();
        WriteYaml(sb, node, 0, inSequence: false);
        if (sb.Length == 0 || sb[^1] != '\n')
        {
            sb.Append('\n');
        }

        return sb.ToString();
    }

    private static void WriteYaml(StringBuilder sb, JsonNode? node, int indent, bool inSequence)
    {
        var pad = new string(' ', indent);
        switch (node)
        {
            case JsonObject obj when obj.Count == 0:
                sb.Append("{}\n");
                break;
            case JsonObject obj:
                var first = true;
                foreach (var (key, value) in obj)
                {
                    if (!(first && inSequence))
                    {
                        sb.Append(pad);
                    }

                    first = false;
                    sb.Append(Scalar(key)).Append(':');
                    if (value is JsonObject { Count: > 0 } or JsonArray { Count: > 0 })
                    {
                        sb.Append('\n');
                        WriteYaml(sb, value, indent + 2, inSequence: false);
                    }
                    else
                    {
                        sb.Append(' ');
                        WriteYaml(sb, value, indent + 2, inSequence: false);
                    }
                }

                break;
            case JsonArray arr when arr.Count == 0:
                sb.Append("[]\n");
                break;
            case JsonArray arr:
                foreach (var item in arr)
                {
                    sb.Append(pad).Append("- ");
                    if (item is JsonArray { Count: > 0 })
                    {
                        sb.Append('\n');
                        WriteYaml(sb, item, indent + 2, inSequence: false);
                    }
                    else
                    {
                        WriteYaml(sb, item, indent + 2, inSequence: true);
                    }
                }

                break;
            case null:
                sb.Append("null\n");
                break;
            case JsonValue v:
                sb.Append(v.GetValueKind() switch
                {
                    JsonValueKind.String => Scalar(v.GetValue<string>()),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => v.ToJsonString(),
                }).Append('\n');
                break;
        }
    }

    private static string Scalar(string s)
    {
        var plain = s.Length > 0
            && !s.Any(NeedsEscape)
            && !char.IsWhiteSpace(s[0]) && !char.IsWhiteSpace(s[^1])
            && s.IndexOfAny([':', '#', '\n', '"', '\'', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`']) < 0
            && !"-?".Contains(s[0], StringComparison.Ordinal)
            && !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            && s is not ("true" or "false" or "null" or "yes" or "no" or "on" or "off" or "~");
        return plain ? s : "\"" + JsonEncodedText.Encode(s).ToString() + "\"";
    }
}
