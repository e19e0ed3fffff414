using System.Diagnostics;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A real rsyslogd (Debian rsyslog + rsyslog-relp) on 127.0.0.1 with imrelp and imtcp, writing per-host files
/// OUT/HOST/PROGRAM.log with one line per message: HOSTNAME APP-NAME PROCID PRI MSG. Restartable on the same ports.
/// </summary>
public sealed class RsyslogReceiver : IAsyncDisposable
{
    private readonly TempDir _dir;
    private Process? _process;

    private RsyslogReceiver(TempDir dir, int relpPort, int tcpPort)
    {
        _dir = dir;
        RelpPort = relpPort;
        TcpPort = tcpPort;
    }

    public int RelpPort { get; }

    public int TcpPort { get; }

    public string OutDir => _dir["out"];

    public static async Task<RsyslogReceiver> StartAsync()
    {
        Peer.Require("rsyslogd", "rsyslog");
        if (!File.Exists("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so"))
        {
            throw Peer.Missing("rsyslog's imrelp", "install Debian package rsyslog-relp");
        }

        var dir = new TempDir("rsyslog");
        Directory.CreateDirectory(dir["out"]);
        Directory.CreateDirectory(dir["work"]);
        var r = new RsyslogReceiver(dir, Peer.FreePort(), Peer.FreePort());
        await File.WriteAllTextAsync(dir["rsyslog.conf"], $$"""
            global(workDirectory="{{dir["work"]}}" maxMessageSize="256k")
            main_queue(queue.type="Direct")
            module(load="imrelp")
            module(load="imtcp")
            input(type="imrelp" port="{{r.RelpPort}}" address="127.0.0.1" ruleset="remote")
            input(type="imtcp" port="{{r.TcpPort}}" address="127.0.0.1" ruleset="remote")
            template(name="perhost" type="string" string="{{dir["out"]}}/%HOSTNAME%/%PROGRAMNAME%.log")
            template(name="line" type="string" string="%HOSTNAME% %APP-NAME% %PROCID% %PRI% %msg%\n")
            ruleset(name="remote") { action(type="omfile" dynaFile="perhost" template="line" flushOnTXEnd="on") }
            """);
        await r.StartProcessAsync();
        return r;
    }

    public async Task StartProcessAsync()
    {
        var psi = new ProcessStartInfo("rsyslogd") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-n", "-f", _dir["rsyslog.conf"], "-i", _dir["rsyslogd.pid"] })
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi)!;
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        await Peer.WaitForTcpAsync(RelpPort, TimeSpan.FromSeconds(15));
        await Peer.WaitForTcpAsync(TcpPort, TimeSpan.FromSeconds(15));
    }

    /// <summary>Stops rsyslogd with SIGTERM, so it writes out what it acknowledged (a SIGKILL would lose rsyslog's own queue).</summary>
    public async Task StopProcessAsync()
    {
        if (_process is { HasExited: false } p)
        {
            await Run.ProcessAsync("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            try
            {
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                p.Kill();
                await p.WaitForExitAsync();
            }
        }

        _process?.Dispose();
        _process = null;
    }

    public async Task RestartAsync()
    {
        await StopProcessAsync();
        await StartProcessAsync();
    }

    /// <summary>Every line of every file, per file (host/program).</summary>
    public Dictionary<string, List<string>> Lines() =>
        Directory.Exists(OutDir)
            ? Directory.EnumerateFiles(OutDir, "*.log", SearchOption.AllDirectories)
                .ToDictionary(f => Path.GetRelativePath(OutDir, f), f => File.ReadAllLines(f).ToList())
            : [];

    public int Count() => Lines().Values.Sum(l => l.Count);

    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        _dir.Dispose();
    }
}
