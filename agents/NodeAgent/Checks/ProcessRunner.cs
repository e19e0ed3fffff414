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
            var stderr = p.StandardError.ReadToEndAsync(cts.Token);
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
