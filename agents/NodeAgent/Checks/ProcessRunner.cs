using System.Diagnostics;

namespace Toolforge.Agents.NodeAgent.Checks;

/// <summary>
/// A subprocess with a hard timeout: killed (with its children) when it passes; a program that cannot be started or
/// exits non-zero is a <see cref="CommandFailedException"/> with its stderr.
/// </summary>
internal static class ProcessRunner
{
    public static async Task<string> RunAsync(string command, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct)
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
            var stdout = p.StandardOutput.ReadToEndAsync(cts.Token);
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
