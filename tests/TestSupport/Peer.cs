using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Rules for tests that need a real peer (dockerd, rsyslogd, iptables, systemd-nspawn). Under CI=true a missing peer
/// is a failure; on a developer's machine it is an explicit, visible skip through <see cref="Missing"/>.
/// </summary>
public static class Peer
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Fails the test (always) with the reason a peer is missing; the message says how to provide it.</summary>
    public static Exception Missing(string what, string how) =>
        new InvalidOperationException($"real peer missing: {what}. {how}{(InCi ? " (CI=true: missing peers fail)" : string.Empty)}");

    public static string? Which(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(program) ? program : null;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':').Concat(["/usr/sbin", "/sbin"]))
        {
            var p = Path.Combine(dir, program);
            if (File.Exists(p))
            {
                return p;
            }
        }

        return null;
    }

    public static string Require(string program, string package) =>
        Which(program) ?? throw Missing(program, $"install Debian package {package} (./build.sh test does)");

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public static async Task WaitForTcpAsync(int port, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (sw.Elapsed < timeout)
            {
                await Task.Delay(50);
            }
        }
    }

    public static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan timeout, TimeSpan? poll = null)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(50));
        }

        return condition();
    }

    /// <summary>The same for a condition that asks a peer (a gRPC call): polled until true or the time is up.</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? poll = null)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(50));
        }

        return await condition();
    }
}

/// <summary>The outcome of running a program to completion.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

public static class Run
{
    /// <summary>Runs a program with a hard timeout (killed with its children when it passes).</summary>
    public static async Task<ProcessResult> ProcessAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null,
        IDictionary<string, string>? env = null, string? stdin = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout}: {stdout}{stderr}");
        }

        p.WaitForExit();
        return new ProcessResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs a shell command; throws with its output when it fails.</summary>
    public static async Task<string> ShAsync(string command, TimeSpan? timeout = null)
    {
        var r = await ProcessAsync("/bin/sh", ["-c", command], timeout);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"`{command}` failed: {r}");
        }

        return r.Stdout;
    }

    private static readonly Dictionary<string, string> ProjectOf = new(StringComparer.Ordinal)
    {
        ["agentctl"] = "agents/AgentCtl",
        ["toolforge-coordinator"] = "agents/Coordinator",
        ["toolforge-node-agent"] = "agents/NodeAgent",
        ["toolforge-builder-agent"] = "agents/BuilderAgent",
        ["toolforge-log-shipper"] = "agents/LogShipper",
    };

    /// <summary>
    /// A folder of the shared reference data: ../shared/reference-data beside the checkout, or under $TFA_SHARED
    /// (./build.sh test sets it for a clone made elsewhere from a local checkout that has ../shared beside it).
    /// </summary>
    public static string ReferenceData(string name, string what)
    {
        var shared = Environment.GetEnvironmentVariable("TFA_SHARED") is { Length: > 0 } s ? s : Path.Combine(RepoRoot, "..", "shared");
        var path = Path.GetFullPath(Path.Combine(shared, "reference-data", name));
        return Directory.Exists(path) ? path : throw Peer.Missing(what, $"expected at {path} (set TFA_SHARED to the shared folder)");
    }

    /// <summary>The repository root (where Agents.sln is).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Agents.sln")))
                {
                    return d.FullName;
                }
            }

            throw new DirectoryNotFoundException("cannot find Agents.sln above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>
    /// Runs one of this solution's programs with `dotnet`, from its own build output (same configuration as the tests),
    /// so it loads exactly the dependencies it was built with (or TFA_PROGRAMS's executable: <see cref="ToolCommand"/>).
    /// The test project must reference the program's project so it is built first.
    /// </summary>
    public static Task<ProcessResult> DotnetToolAsync(string assemblyName, IEnumerable<string> args, TimeSpan? timeout = null,
        IDictionary<string, string>? env = null, string? workingDirectory = null)
    {
        var command = ToolCommand(assemblyName);
        return ProcessAsync(command[0], [.. command[1..], .. args], timeout, env, workingDirectory: workingDirectory);
    }

    /// <summary>
    /// The command that runs one of this solution's programs: `dotnet NAME.dll` from its build output (<see cref="ToolPath"/>),
    /// or, when TFA_PROGRAMS names a folder that holds NAME (out/bin after `./build.sh build`: the published NativeAOT
    /// executables), that executable, so the tests that start a program as a process run the shipped binary.
    /// </summary>
    public static string[] ToolCommand(string assemblyName)
    {
        if (Environment.GetEnvironmentVariable("TFA_PROGRAMS") is { Length: > 0 } programs)
        {
            // A relative folder is the repository's (out/bin), not the test host's working directory; a folder that
            // does not hold the program is a mistake said at once, not a silent fall back to the build output's .dll.
            var native = Path.GetFullPath(Path.Combine(Path.IsPathRooted(programs) ? programs : Path.Combine(RepoRoot, programs), assemblyName));
            return File.Exists(native) ? [native] : throw new FileNotFoundException($"TFA_PROGRAMS={programs}: {native} is missing (./build.sh build puts the programs in out/bin)");
        }

        return ["dotnet", ToolPath(assemblyName)];
    }

    public static string ToolPath(string assemblyName)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug";
        var dll = Path.Combine(RepoRoot, ProjectOf[assemblyName], "bin", configuration, "net10.0", assemblyName + ".dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{dll} is missing: build the solution first (./build.sh test does)");
        }

        return dll;
    }
}

/// <summary>A temporary directory removed at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "tfa")
    {
        Path = Directory.CreateTempSubdirectory(prefix + "-").FullName;
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // a peer may still hold a file open; the OS cleans /tmp
        }
    }
}
