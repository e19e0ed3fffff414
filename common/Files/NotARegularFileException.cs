namespace Toolforge.Agents.Common.Files;

/// <summary>
/// A path where a file is to be written holds something else (a device, FIFO, socket, directory or symlink):
/// refused, and the thing left as it was. An <see cref="IOException"/>, so a writer that reports I/O errors reports
/// this one too.
/// </summary>
public sealed class NotARegularFileException(string path, string kind)
    : IOException($"{path} is {kind}, not a regular file: refusing to replace it")
{
    public string Path { get; } = path;

    /// <summary>What is there: "a FIFO", "a character device", "a symlink (to /x)"...</summary>
    public string Kind { get; } = kind;
}
