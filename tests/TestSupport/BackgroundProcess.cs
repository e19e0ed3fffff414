using System.Diagnostics;
using System.Text;

namespace Toolforge.Agents.TestSupport;

/// <summary>A long-running program a test starts (a daemon under test, a peer), killed by its PID at dispose.</summary>
public sealed partial class BackgroundProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private readonly Thread[] _readers;

    private BackgroundProcess(Process process)
    {
        _process = process;
        // Read on threads of their own, not the thread pool's callbacks (BeginOutputReadLine): a test process whose
        // pool is starved by other tests running beside it (CI: 2 cores, every assembly at once) would see a line the
        // daemon wrote long after it was written, and a wait for it time out.
        _readers = [Reader(process.StandardOutput), Reader(process.StandardError)];
    }

    private Thread Reader(StreamReader from)
    {
        var t = new Thread(() =>
        {
            try
            {
                while (from.ReadLine() is { } line)
                {
                    Append(line);
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                // the process was disposed under the reader: its output ends here
            }
        })
        { IsBackground = true, Name = "output of " + _process.Id };
        t.Start();
        return t;
    }

    private bool _drained;

    /// <summary>
    /// After the process ended: waits until its output has been read to the end, once (bounded: a child that inherited
    /// the pipes may hold them open).
    /// </summary>
    private void Drain()
    {
        if (_drained)
        {
            return;
        }

        var deadline = Stopwatch.StartNew();
        foreach (var t in _readers)
        {
            var left = TimeSpan.FromSeconds(5) - deadline.Elapsed;
            t.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }

        _drained = true;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>What the process wrote so far (stdout and stderr, by line); all of it once the process has ended.</summary>
    public string Output
    {
        get
        {
            if (!_disposed && _process.HasExited)
            {
                Drain();
            }

            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public static BackgroundProcess Start(string file, IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        return new BackgroundProcess(Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}"));
    }

    /// <summary>One of this solution's programs, from its build output (or TFA_PROGRAMS: <see cref="Run.ToolCommand"/>).</summary>
    public static BackgroundProcess StartTool(string assemblyName, IEnumerable<string> args, IDictionary<string, string>? env = null)
    {
        var command = Run.ToolCommand(assemblyName);
        return Start(command[0], [.. command[1..], .. args], env);
    }

    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (Output.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }

            if (_process.HasExited)
            {
                Drain();
                return Output.Contains(text, StringComparison.Ordinal);
            }

            await Task.Delay(50);
        }

        return Output.Contains(text, StringComparison.Ordinal); // a delay that ended late: what was read meanwhile counts
    }

    /// <summary>
    /// kill(2) straight from this process: no kill(1) child to start, so a timing that begins here is the daemon's.
    /// A process that has already ended (ESRCH) is left alone, as kill(1)'s failure was.
    /// </summary>
    public void Signal(int signal)
    {
        const int NoSuchProcess = 3;
        if (_process.HasExited)
        {
            return; // reaped: its PID may be another process's by now
        }

        if (kill(Pid, signal) != 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != NoSuchProcess)
        {
            throw new InvalidOperationException($"kill({Pid}, {signal}): errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            Signal(15);
            try
            {
                await _process.WaitForExitAsync().WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        return _process.ExitCode;
    }

    private bool _disposing;
    private volatile bool _disposed;

    /// <summary>Stops the process (its whole tree) by its own handle; a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposing)
        {
            return;
        }

        _disposing = true;

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        Drain(); // what it wrote last stays readable after this (Output no longer asks the disposed Process)
        _disposed = true;
        _process.Dispose();
    }
}
