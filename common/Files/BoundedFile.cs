using System.Globalization;
using System.Text;

namespace Toolforge.Agents.Common.Files;

/// <summary>
/// Reads a text input from outside with a bound (an offline audit's `--iptables-save`, `--nft-json`, `--services`; the
/// node-agent's `Kubernetes:File` snapshot, at start and every time it changes): more than <see cref="MaxBytes"/>, or a
/// NUL byte (binary data: none of these is text with NULs), is an <see cref="InvalidDataException"/> naming the option
/// or key and the file, found while reading, so `/dev/zero` or a wrong file is refused at its first block instead of
/// filling the memory.
/// </summary>
public static class BoundedFile
{
    /// <summary>256 MiB: far above a 10,000-Service node's iptables-save (about 10 MB) or nft -j listing (about 60 MB).</summary>
    public const int MaxBytes = 256 << 20;

    /// <summary>
    /// The bytes of <paramref name="path"/>. Every problem names <paramref name="option"/> and the file: no such file, a
    /// directory, no permission, a read error (as <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/>),
    /// too big or binary (<see cref="InvalidDataException"/>).
    /// </summary>
    public static (byte[] Buffer, int Length) ReadBytes(string option, string path, int maxBytes = MaxBytes)
    {
        try
        {
            return Read(option, path, maxBytes);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"{option} {path}: {FileProblem.Describe(ex, path)}", path, ex);
        }
        catch (UnauthorizedAccessException ex) when (!Directory.Exists(path))
        {
            throw new UnauthorizedAccessException($"{option} {path}: {FileProblem.Describe(ex, path)}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option} {path}: {FileProblem.Describe(ex, path)}", ex);
        }
    }

    private static (byte[] Buffer, int Length) Read(string option, string path, int maxBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        if (stream.CanSeek && stream.Length > maxBytes)
        {
            throw TooBig(option, path, maxBytes);
        }

        var buffer = new byte[stream.CanSeek ? (int)Math.Clamp(stream.Length + 1, Math.Min(4096, (long)maxBytes + 1), (long)maxBytes + 1) : 64 * 1024];
        var length = 0;
        int read;
        while ((read = stream.Read(buffer, length, Math.Min(buffer.Length - length, 1 << 20))) > 0)
        {
            if (buffer.AsSpan(length, read).IndexOf((byte)0) is var nul and >= 0)
            {
                throw new InvalidDataException($"{option} {path}: binary data (a NUL byte at offset {(length + nul).ToString(CultureInfo.InvariantCulture)}), not text");
            }

            length += read;
            if (length > maxBytes)
            {
                throw TooBig(option, path, maxBytes);
            }

            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, (long)maxBytes + 1));
            }
        }

        return (buffer, length);
    }

    public static string ReadText(string option, string path, int maxBytes = MaxBytes)
    {
        var (buffer, length) = ReadBytes(option, path, maxBytes);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    private static InvalidDataException TooBig(string option, string path, int maxBytes) =>
        new($"{option} {path}: more than {Size(maxBytes)}, the most an offline input may be");

    private static string Size(int bytes) => bytes >= 1 << 20 ? $"{(bytes >> 20).ToString(CultureInfo.InvariantCulture)} MiB" : $"{bytes.ToString(CultureInfo.InvariantCulture)} bytes";
}
