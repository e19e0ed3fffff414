using Toolforge.Agents.Common.Contracts;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// Lines of a build's log to store, and the build's count once they are: the last sequence number, the bytes and
/// the lines dropped over the limits. Planned from the count of what is stored, without changing it.
/// </summary>
internal sealed record LogBatch(IReadOnlyList<(long Seq, string Line)> Rows, long Seq, long Bytes, long Dropped)
{
    /// <summary>
    /// The rows for <paramref name="lines"/> after a log that holds lines up to <paramref name="seq"/> and
    /// <paramref name="bytes"/> bytes: numbered from <paramref name="firstLine"/> when the builder numbers them
    /// (lines at or below <paramref name="seq"/> are stored already and skipped), else after <paramref name="seq"/>.
    /// Lines beyond <see cref="ReportLimits.MaxLogLinesPerBuild"/> or <paramref name="maxBytes"/> are counted, not kept.
    /// </summary>
    public static LogBatch Plan(long seq, long bytes, long dropped, IReadOnlyList<string> lines, long firstLine, long maxBytes = BuildLogs.MaxBytesPerBuild)
    {
        var rows = new List<(long, string)>(lines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            var n = firstLine > 0 ? firstLine + i : seq + 1;
            if (n <= seq)
            {
                continue; // sent before, and stored
            }

            var size = System.Text.Encoding.UTF8.GetByteCount(line);
            if (n > ReportLimits.MaxLogLinesPerBuild || bytes + size > maxBytes)
            {
                dropped++;
                continue;
            }

            seq = n;
            bytes += size;
            rows.Add((n, line));
        }

        return new LogBatch(rows, seq, bytes, dropped);
    }
}
