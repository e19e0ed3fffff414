using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Coordinator.Builds;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>Planning a batch of build log lines from the count of what is stored.</summary>
public sealed class LogBatchTests
{
    [Fact]
    public void Numbered_lines_already_stored_are_skipped_and_the_rest_follow()
    {
        var b = LogBatch.Plan(seq: 50, bytes: 500, dropped: 0, ["line 49", "line 50", "line 51", "line 52"], firstLine: 49);
        Assert.Equal([(51L, "line 51"), (52L, "line 52")], b.Rows);
        Assert.Equal(52, b.Seq);
        Assert.Equal(500 + 14, b.Bytes);
    }

    [Fact]
    public void A_batch_planned_again_from_the_same_count_after_its_write_failed_is_the_same_batch()
    {
        var lines = Enumerable.Range(51, 10).Select(i => $"line {i}").ToList();
        var refused = LogBatch.Plan(50, 500, 0, lines, 51);
        var resent = LogBatch.Plan(50, 500, 0, lines, 51); // the count did not move: the write failed
        Assert.Equal(10, resent.Rows.Count);
        Assert.Equal(refused.Rows, resent.Rows);
    }

    [Fact]
    public void Unnumbered_lines_go_after_the_stored_ones()
    {
        var b = LogBatch.Plan(3, 0, 0, ["a", "b"], firstLine: 0);
        Assert.Equal([(4L, "a"), (5L, "b")], b.Rows);
    }

    [Fact]
    public void Lines_beyond_the_limits_are_counted_not_kept()
    {
        var b = LogBatch.Plan(ReportLimits.MaxLogLinesPerBuild - 1, 0, 2, ["last", "over", "over too"], ReportLimits.MaxLogLinesPerBuild);
        Assert.Equal([((long)ReportLimits.MaxLogLinesPerBuild, "last")], b.Rows);
        Assert.Equal(4, b.Dropped);
        var bytes = LogBatch.Plan(0, 0, 0, ["12345", "6"], 1, maxBytes: 5);
        Assert.Equal([(1L, "12345")], bytes.Rows);
        Assert.Equal(1, bytes.Dropped);
    }
}
