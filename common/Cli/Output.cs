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

    /// <summary>A table with every column and nothing cut (kubectl's -o wide).</summary>
    Wide,
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
        "wide" => OutputFormat.Wide,
        _ => throw new ArgumentException($"-o: unknown output format \"{text}\" (use table, wide, json or yaml)"),
    };

    /// <summary>
    /// The width a table may take: the terminal's (COLUMNS when set, as shells export it to programs they run, else the
    /// console's), or null — no limit — when the output is not a terminal (a pipe or a file gets every character).
    /// </summary>
    public static int? TerminalWidth()
    {
        if (Console.IsOutputRedirected)
        {
            return null;
        }

        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.None, CultureInfo.InvariantCulture, out var columns) && columns > 0)
        {
            return columns;
        }

        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

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
    /// A plain table: a header row and aligned columns, at most <paramref name="width"/> characters wide (null: as wide
    /// as its content). When it does not fit, the middle columns give way first (widest first, down to 12 characters),
    /// then the last one (the message, down to half the width); the first column names the row and is cut last. A cut
    /// cell ends in "…", so nothing is shortened without a mark. Every cell is escaped (<see cref="Escape"/>).
    /// <paramref name="colourColumn"/> is coloured by its own value.
    /// </summary>
    public static string Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows, int? width = null, int colourColumn = -1)
    {
        var all = rows.Select(r => (IReadOnlyList<string>)r.Select(Escape).ToList()).ToList();
        var widths = ColumnWidths(headers, all, width);
        var sb = new StringBuilder();
        AppendRow(sb, headers, widths, -1);
        foreach (var r in all)
        {
            AppendRow(sb, r, widths, colourColumn);
        }

        return sb.ToString();
    }

    /// <summary>Each column's width: its widest cell, then shrunk (see <see cref="Table"/>) until a row fits in <paramref name="width"/>.</summary>
    public static int[] ColumnWidths(IReadOnlyList<string> headers, IReadOnlyList<IReadOnlyList<string>> rows, int? width)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => i < r.Count ? r[i].Length : 0))).ToArray();
        if (width is not { } limit || widths.Length < 2)
        {
            return widths;
        }

        var available = limit - (2 * (widths.Length - 1));
        var last = widths.Length - 1;
        var excess = widths.Sum() - available;
        var middle = Enumerable.Range(1, Math.Max(0, last - 1)).ToArray();

        // The middle columns, widest first, down to 12 characters (or their header).
        excess = Shrink(widths, middle, i => Math.Min(widths[i], Math.Max(headers[i].Length, 12)), excess);

        // The message, down to half the width.
        excess = Shrink(widths, [last], i => Math.Max(headers[i].Length, Math.Min(widths[i], available / 2)), excess);

        // Still too wide (a narrow terminal): everything but the headers' own width may go.
        _ = Shrink(widths, [.. middle, last, 0], i => Math.Max(headers[i].Length, 4), excess);
        return widths;
    }

    // Takes one character at a time from the widest of <columns> still above its floor, until nothing is in excess.
    private static int Shrink(int[] widths, int[] columns, Func<int, int> floorOf, int excess)
    {
        var floors = columns.ToDictionary(i => i, floorOf);
        while (excess > 0)
        {
            var widest = -1;
            foreach (var i in columns)
            {
                if (widths[i] > floors[i] && (widest < 0 || widths[i] > widths[widest]))
                {
                    widest = i;
                }
            }

            if (widest < 0)
            {
                break;
            }

            widths[widest]--;
            excess--;
        }

        return excess;
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
