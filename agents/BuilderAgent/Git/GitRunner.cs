using System.Diagnostics;
using System.Text;
using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>What a git command printed.</summary>
internal readonly record struct GitResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs the git CLI in a checkout: no shell (arguments passed as a list), a deadline on every command (the process
/// tree is killed when it passes), output bounded (stdout <see cref="MaxOutput"/>, stderr <see cref="MaxError"/>:
/// past it the command is killed and refused), no prompt for credentials, no hooks, no background gc, and only the
/// transports a repository is fetched over (no ext::, whose URL is a command).
/// </summary>
internal sealed class GitRunner(string workingDirectory, TimeSpan timeout, string git = "git", IReadOnlyList<string>? config = null)
{
    public const int MaxOutput = 16 * 1024 * 1024;
    public const int MaxError = 64 * 1024;

    private static readonly string[] Safety =
    [
        "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
        "-c", "core.quotePath=false", "-c", "color.ui=false",
    ];

    public string WorkingDirectory { get; } = workingDirectory;

    public TimeSpan Timeout { get; } = timeout;

    /// <summary>The git program run.</summary>
    public string Git { get; } = git;

    /// <summary>Runs git; a non-zero exit is a <see cref="GitException"/> unless <paramref name="allowFailure"/>.</summary>
    public async Task<GitResult> RunAsync(IReadOnlyList<string> args, CancellationToken ct, bool allowFailure = false)
    {
        var psi = new ProcessStartInfo(Git)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = WorkingDirectory,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in Safety.Concat(config ?? []).Concat(args))
        {
            psi.ArgumentList.Add(a);
        }

        // Nothing of the daemon's environment steers git elsewhere (config given through the environment, other object stores).
        foreach (var inherited in new[] { "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_INDEX_FILE" })
        {
            psi.Environment.Remove(inherited);
        }

        if (config is { Count: > 0 })
        {
            // Not an operator's global or system configuration either (a proxy, credentials: the poll's, not this read's).
            psi.Environment.Remove("GIT_CONFIG_GLOBAL");
            psi.Environment.Remove("GIT_CONFIG_SYSTEM");
            psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
            // A checkout read though another user owns it: no lazy fetch of a partial clone's missing objects (it would run
            // the checkout's credential helpers), no replace refs (they could show another tree than HEAD's).
            psi.Environment["GIT_NO_LAZY_FETCH"] = "1";
            psi.Environment["GIT_NO_REPLACE_OBJECTS"] = "1";
        }

        psi.Environment["GIT_TERMINAL_PROMPT"] = "0";
        psi.Environment["GIT_ALLOW_PROTOCOL"] = "file:git:http:https:ssh";
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["GIT_PAGER"] = "cat";
        psi.Environment.Remove("GIT_DIR");
        psi.Environment.Remove("GIT_WORK_TREE");
        if (!psi.Environment.ContainsKey("GIT_SSH_COMMAND"))
        {
            psi.Environment["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes";
        }

        var what = $"git {args[0]}";
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new GitException($"{what}: git did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new GitException($"{what}: cannot run git ({ex.Message}; install Debian package git)");
        }

        using (p)
        {
            p.StandardInput.Close();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(Timeout);
            // Past its bound a stream is not read on: the program is killed at once instead of blocking on a full pipe.
            var stdout = ReadBoundedAsync(p.StandardOutput, MaxOutput, () => Kill(p), cts.Token);
            var stderr = ReadBoundedAsync(p.StandardError, MaxError, () => Kill(p), cts.Token);
            try
            {
                var (output, outCut) = await stdout.ConfigureAwait(false);
                var (errors, errCut) = await stderr.ConfigureAwait(false);
                if (outCut || errCut)
                {
                    throw new GitException($"{what} in {Safe(WorkingDirectory)}: printed more than {(outCut ? MaxOutput : MaxError)} bytes; refused");
                }

                await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
                if (p.ExitCode != 0 && !allowFailure)
                {
                    throw new GitException($"{what} in {Safe(WorkingDirectory)} failed (exit {p.ExitCode}): {Safe(GitMessage(errors))}");
                }

                return new GitResult(p.ExitCode, output, errors);
            }
            catch (OperationCanceledException)
            {
                Kill(p);
                if (ct.IsCancellationRequested)
                {
                    throw;
                }

                throw new GitException($"{what} in {Safe(WorkingDirectory)} did not finish within {Timeout}; killed");
            }
        }
    }

    /// <summary>A repository string (a path, a subject, an author) cut to <paramref name="max"/> characters and escaped for a log or a terminal.</summary>
    public static string Safe(string s, int max = 200) => Output.Escape(s.Length <= max ? s : s[..max] + "…");

    /// <summary>What git said went wrong: its first "fatal:" or "error:" line (the cause; what follows is advice), else its last line.</summary>
    internal static string GitMessage(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.FirstOrDefault(l => l.StartsWith("fatal:", StringComparison.Ordinal) || l.StartsWith("error:", StringComparison.Ordinal))
            ?? lines.LastOrDefault() ?? "no message";
    }

    // Bytes, as git wrote them, up to max; decoded once at the end (a UTF-8 sequence is never split).
    private static async Task<(string Text, bool Cut)> ReadBoundedAsync(StreamReader reader, int max, Action onCut, CancellationToken ct)
    {
        using var bytes = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await reader.BaseStream.ReadAsync(buffer.AsMemory(), ct).ConfigureAwait(false)) > 0)
        {
            if (bytes.Length + read > max)
            {
                onCut();
                return (string.Empty, true);
            }

            bytes.Write(buffer, 0, read);
        }

        return (Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length), false);
    }

    private static void Kill(Process p)
    {
        try
        {
            p.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }
}
