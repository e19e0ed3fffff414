using System.Globalization;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>
/// A weekly maintenance window in UTC: days ("Mon", "Mon-Fri", "Sat,Sun", "daily") and a time range "HH:MM-HH:MM"
/// ("24:00" ends a day). A range that ends at or before its start runs past midnight and belongs to the day it starts:
/// "Fri 22:00-02:00" is Friday 22:00 to Saturday 02:00.
/// </summary>
public sealed partial class MaintenanceWindow
{
    private static readonly string[] DayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

    private readonly bool[] _days;

    private MaintenanceWindow(bool[] days, TimeSpan start, TimeSpan end, string text)
    {
        _days = days;
        Start = start;
        Length = end > start ? end - start : end + TimeSpan.FromDays(1) - start;
        Text = text;
    }

    public TimeSpan Start { get; }

    public TimeSpan Length { get; }

    public string Text { get; }

    [GeneratedRegex(@"^(?<days>[A-Za-z,\-]+)[ \t]+(?<sh>[0-9]{2}):(?<sm>[0-9]{2})-(?<eh>[0-9]{2}):(?<em>[0-9]{2})\z", RegexOptions.CultureInvariant)]
    private static partial Regex Form();

    /// <summary>The window <paramref name="text"/> says, or null with <paramref name="problem"/> saying why not.</summary>
    public static MaintenanceWindow? Parse(string text, out string? problem)
    {
        problem = null;
        var m = Form().Match(text.Trim());
        if (!m.Success)
        {
            problem = $"\"{Cut(text)}\" is not a window such as \"Mon-Fri 08:00-16:00\" or \"daily 22:00-04:00\" (UTC)";
            return null;
        }

        var days = new bool[7];
        foreach (var part in m.Groups["days"].Value.Split(','))
        {
            if (part.Equals("daily", StringComparison.OrdinalIgnoreCase))
            {
                Array.Fill(days, true);
                continue;
            }

            var range = part.Split('-');
            var from = Day(range[0]);
            var to = range.Length == 2 ? Day(range[1]) : from;
            if (range.Length > 2 || from < 0 || to < 0)
            {
                problem = $"\"{Cut(text)}\": \"{Cut(part)}\" is not a day or a range of days (Mon, Mon-Fri, Sat,Sun, daily)";
                return null;
            }

            for (var d = from; ; d = (d + 1) % 7)
            {
                days[d] = true;
                if (d == to)
                {
                    break;
                }
            }
        }

        var start = Time(m.Groups["sh"].Value, m.Groups["sm"].Value);
        var end = Time(m.Groups["eh"].Value, m.Groups["em"].Value);
        if (start is null || end is null || start == TimeSpan.FromDays(1))
        {
            problem = $"\"{Cut(text)}\": times are 00:00 to 23:59 (24:00 may end a window)";
            return null;
        }

        if (start == end)
        {
            problem = $"\"{Cut(text)}\": the window is empty (for a whole day write 00:00-24:00)";
            return null;
        }

        return new MaintenanceWindow(days, start.Value, end.Value, text.Trim());
    }

    /// <summary>Whether <paramref name="at"/> is inside the window.</summary>
    public bool Contains(DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        // The window opened today, or opened yesterday and runs past midnight.
        for (var back = 0; back <= 1; back++)
        {
            var day = utc.Date.AddDays(-back);
            var opens = day + Start;
            if (_days[(int)day.DayOfWeek] && utc >= opens && utc < opens + Length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>When the window next opens after <paramref name="at"/> (within a week).</summary>
    public DateTimeOffset NextStart(DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        for (var ahead = 0; ahead <= 7; ahead++)
        {
            var day = utc.Date.AddDays(ahead);
            var opens = day + Start;
            if (_days[(int)day.DayOfWeek] && opens > utc)
            {
                return new DateTimeOffset(opens, TimeSpan.Zero);
            }
        }

        return at + TimeSpan.FromDays(7); // unreachable: some day is set
    }

    private static int Day(string name) => Array.FindIndex(DayNames, d => d.Equals(name, StringComparison.OrdinalIgnoreCase));

    private static TimeSpan? Time(string hours, string minutes)
    {
        var h = int.Parse(hours, CultureInfo.InvariantCulture);
        var m = int.Parse(minutes, CultureInfo.InvariantCulture);
        return h > 24 || m > 59 || (h == 24 && m > 0) ? null : new TimeSpan(h, m, 0);
    }

    private static string Cut(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
