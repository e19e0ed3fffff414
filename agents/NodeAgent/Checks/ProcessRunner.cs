using System.Diagnostics;

namespace Toolforge.Agents.NodeAgent.Checks;

/// <summary>
/// A subprocess with a hard timeout: killed (with its children) when it passes; a program that cannot be started or
/// exits non-zero is a <see cref="CommandFailedException"/> with its stderr.
/// </summary>
internal static class ProcessRunner
{
    public static Task<string> RunAsync(string command, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct) =>
        RunAsync(command, args, timeout, (p, t) => p.StandardOutput.ReadToEndAsync(t), ct);

    /// <summary>
    /// The output as UTF-8 bytes, as the program wrote it (no UTF-16 copy: a 10 MB iptables-save dump stays 10 MB):
    /// the buffer and how much of it is the output. <paramref name="sizeHint"/> (the last run's size) sizes the buffer
    /// so a dump of about the same size is read without growing it.
    /// </summary>
    public static Task<(byte[] Buffer, int Length)> RunBytesAsync(string command, IEnumerable<string> args, TimeSpan timeout, int sizeHint, CancellationToken ct) =>
        RunAsync(command, args, timeout, (p, t) => ReadAllAsync(p.StandardOutput.BaseStream, sizeHint, t), ct);

    /// <summary>
    /// The output line by line as it is written (each line's bytes without its newline, valid only during the call),
    /// never held whole: a table a tenant can fill (conntrack) costs one buffer, not its size. Past
    /// <paramref name="maxBytes"/> the program is killed and the result says the output was cut there; a line longer
    /// than the buffer (64 KiB) is skipped.
    /// </summary>
    public static async Task<(long Bytes, bool Truncated)> RunLinesAsync(string command, IEnumerable<string> args, TimeSpan timeout, long maxBytes,
        LineHandler onLine, CancellationToken ct)
    {
        long total = 0;
        var truncated = false;
        try
        {
            await RunAsync(command, args, timeout, async (p, t) =>
            {
                var buffer = new byte[64 * 1024];
                var filled = 0;
                var skipping = false;
                int read;
                while ((read = await p.StandardOutput.BaseStream.ReadAsync(buffer.AsMemory(filled), t).ConfigureAwait(false)) > 0)
                {
                    if (total + read > maxBytes)
                    {
                        read = (int)(maxBytes - total);
                        truncated = true;
                    }

                    total += read;
                    var end = filled + read;
                    var start = 0;
                    int nl;
                    while ((nl = buffer.AsSpan(start, end - start).IndexOf((byte)'\n')) >= 0)
                    {
                        if (!skipping)
                        {
                            onLine(buffer.AsSpan(start, nl));
                        }

                        skipping = false;
                        start += nl + 1;
                    }

                    if (truncated)
                    {
                        // The rest is not read: stop the program instead of leaving it blocked on a full pipe.
                        p.Kill(entireProcessTree: true);
                        return 0;
                    }

                    filled = end - start;
                    buffer.AsSpan(start, filled).CopyTo(buffer);
                    if (filled == buffer.Length)
                    {
                        (filled, skipping) = (0, true);
                    }
                }

                if (filled > 0 && !skipping)
                {
                    onLine(buffer.AsSpan(0, filled));
                }

                return 0;
            }, ct).ConfigureAwait(false);
        }
        catch (CommandFailedException) when (truncated)
        {
            // killed here, past the bound: what was read stands
        }

        return (total, truncated);
    }

    /// <summary>One line of a program's output (<see cref="RunLinesAsync"/>).</summary>
    public delegate void LineHandler(ReadOnlySpan<byte> line);

    /// <summary>How much of a program's stderr is kept (for its <see cref="CommandFailedException"/>); the rest is read and dropped.</summary>
    public const int MaxErrorChars = 16 * 1024;

    /// <summary>Up to <paramref name="max"/> characters of <paramref name="reader"/>; the rest read to its end and dropped (the program never blocks on a full pipe), said with a mark.</summary>
    public static async Task<string> ReadBoundedAsync(TextReader reader, int max, CancellationToken ct)
    {
        var kept = new System.Text.StringBuilder();
        var chunk = new char[4096];
        long dropped = 0;
        int read;
        while ((read = await reader.ReadAsync(chunk.AsMemory(), ct).ConfigureAwait(false)) > 0)
        {
            var take = Math.Min(read, max - kept.Length);
            kept.Append(chunk, 0, take);
            dropped += read - take;
        }

        return dropped > 0 ? kept.Append(System.Globalization.CultureInfo.InvariantCulture, $"... ({dropped} more characters dropped)").ToString() : kept.ToString();
    }

    /// <summary>A program whose output is not wanted (the admin's hard-reset command): read and dropped as it comes, never held; its stderr bounded.</summary>
    public static async Task RunDiscardingAsync(string command, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct) =>
        await RunLinesAsync(command, args, timeout, long.MaxValue, static _ => { }, ct).ConfigureAwait(false);

    private static async Task<(byte[], int)> ReadAllAsync(Stream stream, int sizeHint, CancellationToken ct)
    {
        var buffer = new byte[Math.Max(64 * 1024, sizeHint + (sizeHint / 8))];
        var length = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false)) > 0)
        {
            length += read;
            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }
        }

        return (buffer, length);
    }

    private static async Task<T> RunAsync<T>(string command, IEnumerable<string> args, TimeSpan timeout, Func<Process, CancellationToken, Task<T>> readOutput, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new CommandFailedException(command, null, "the process did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new CommandFailedException(command, null, ex.Message, ex);
        }

        using (p)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            var stdout = readOutput(p, cts.Token);
            var stderr = ReadBoundedAsync(p.StandardError, MaxErrorChars, cts.Token);
            try
            {
                await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
                var output = await stdout.ConfigureAwait(false);
                var errors = await stderr.ConfigureAwait(false);
                if (p.ExitCode != 0)
                {
                    throw new CommandFailedException(string.Join(' ', [command, .. psi.ArgumentList.Take(6)]), p.ExitCode, errors);
                }

                return output;
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                throw;
            }
        }
    }
}
