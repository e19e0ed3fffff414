using Toolforge.Agents.Common.Files;

namespace Toolforge.Agents.Common.Journal;

/// <summary>
/// Where a journal reader keeps the cursor of the last entry it is done with (the shipper: delivered; the node-agent's
/// journal rules: judged). Written with <see cref="DurableFile"/>; a file that does not hold a cursor is an error the
/// caller names, not a silent restart from somewhere.
/// </summary>
public sealed class CursorStore(string path)
{
    public string Path { get; } = path;

    /// <summary>
    /// The saved cursor; null when there is none; throws <see cref="InvalidDataException"/> when the file is not a
    /// cursor, or not a regular file at all (a FIFO would block the read; <see cref="Save"/> refuses it too).
    /// </summary>
    public string? Load()
    {
        if (DurableFile.Problem(Path) is { } problem)
        {
            throw new InvalidDataException(problem);
        }

        if (!File.Exists(Path))
        {
            return null;
        }

        var text = File.ReadAllText(Path).Trim();
        // A journal cursor is "s=...;i=...;b=...;m=...;t=...;x=..." in printable ASCII.
        if (text.Length == 0 || text.Length > 512 || !text.Contains("s=", StringComparison.Ordinal) || text.Any(c => c < 33 || c > 126))
        {
            throw new InvalidDataException($"{Path} does not hold a journal cursor ({text.Length} characters)");
        }

        return text;
    }

    public void Save(string cursor) => DurableFile.Write(Path, System.Text.Encoding.ASCII.GetBytes(cursor));
}
