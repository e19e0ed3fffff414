using Toolforge.Agents.Coordinator.Remediation;

namespace Toolforge.Agents.Coordinator.Tests.Unit.Remediation;

public sealed class MaintenanceWindowTests
{
    private static MaintenanceWindow W(string text) => MaintenanceWindow.Parse(text, out var problem) ?? throw new InvalidOperationException(problem);

    private static DateTimeOffset At(int day, int hour, int minute = 0) => new(2026, 12, day, hour, minute, 0, TimeSpan.Zero); // 7 Dec 2026: a Monday

    [Fact]
    public void A_weekday_window_holds_its_start_and_not_its_end()
    {
        var w = W("Mon-Fri 08:00-16:00");
        Assert.True(w.Contains(At(7, 8)));
        Assert.False(w.Contains(At(7, 7, 59)));
        Assert.False(w.Contains(At(7, 16)));
        Assert.True(w.Contains(At(11, 15, 59))); // Friday
        Assert.False(w.Contains(At(12, 10)));    // Saturday
        Assert.Equal(At(14, 8), w.NextStart(At(11, 16)));
    }

    [Fact]
    public void A_window_past_midnight_belongs_to_the_day_it_starts()
    {
        var w = W("Fri 22:00-02:00");
        Assert.True(w.Contains(At(11, 23)));
        Assert.True(w.Contains(At(12, 1, 59))); // Saturday night, from Friday's window
        Assert.False(w.Contains(At(12, 2)));
        Assert.False(w.Contains(At(8, 1)));     // Tuesday 01:00: Monday had no window
    }

    [Fact]
    public void Daily_lists_of_days_and_a_whole_day_are_windows_too()
    {
        Assert.True(W("daily 00:00-24:00").Contains(At(9, 13)));
        var weekend = W("Sat,Sun 10:00-12:00");
        Assert.True(weekend.Contains(At(13, 11)));
        Assert.False(weekend.Contains(At(10, 11)));
        Assert.True(W("Fri-Mon 10:00-11:00").Contains(At(13, 10, 30))); // a range across the week's end
    }

    [Theory]
    [InlineData("weekdays 08:00-16:00", "is not a day")]
    [InlineData("Mon 8:00-16:00", "is not a window such as")]
    [InlineData("Mon 08:00-08:00", "the window is empty")]
    [InlineData("Mon 25:00-26:00", "times are 00:00 to 23:59")]
    [InlineData("Mon 24:00-01:00", "times are 00:00 to 23:59")]
    public void A_window_that_is_no_window_is_named(string text, string expected)
    {
        Assert.Null(MaintenanceWindow.Parse(text, out var problem));
        Assert.Contains(expected, problem, StringComparison.Ordinal);
    }
}
