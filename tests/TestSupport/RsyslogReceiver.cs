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
    private NetNamespace? _namespace;
    private string _address = "127.0.0.1";
    private int _relpTlsPort;

    private RsyslogReceiver(TempDir dir, int relpPort, int tcpPort)
    {
        _dir = dir;
        RelpPort = relpPort;
        TcpPort = tcpPort;
    }

    public int RelpPort { get; }

    public int TcpPort { get; }

    /// <summary>RELP over TLS (the shipped configuration only).</summary>
    public int RelpTlsPort => _relpTlsPort;

    /// <summary>What rsyslogd said on stdout and stderr.</summary>
    public string Output { get; private set; } = string.Empty;

    /// <summary>Certificates for the shipped configuration: the CA bundle, the receiver's certificate and key.</summary>
    public sealed record Tls(string CaBundle, string Certificate, string Key, IReadOnlyList<string> PermittedPeers);

    /// <summary>
    /// rsyslogd with the receiver configuration this project ships (packaging/rsyslog/toolforge-receiver.conf), its
    /// puppet paths, ports, addresses and permitted peers replaced by the test's; DNS off, so a sender's directory is
    /// its address. In <paramref name="inNamespace"/> when given (listening on <paramref name="address"/> there).
    /// </summary>
    public static async Task<RsyslogReceiver> StartShippedAsync(Tls tls, string address = "127.0.0.1", NetNamespace? inNamespace = null)
    {
        Peer.Require("rsyslogd", "rsyslog");
        if (!File.Exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"))
        {
            throw Peer.Missing("rsyslog's TLS driver", "install Debian package rsyslog-gnutls");
        }

        var dir = new TempDir("rsyslog");
        Directory.CreateDirectory(dir["out"]);
        Directory.CreateDirectory(dir["work"]);
        var r = new RsyslogReceiver(dir, relpPort: 0, Peer.FreePort()) { _namespace = inNamespace, _address = address, _relpTlsPort = Peer.FreePort() };
        var shipped = await File.ReadAllTextAsync(Path.Combine(Run.RepoRoot, "packaging", "rsyslog", "toolforge-receiver.conf"));
        var peers = string.Join(",", tls.PermittedPeers.Select(p => $"\"{p}\""));
        var conf = Replace(shipped, new Dictionary<string, string>
        {
            ["/srv/syslog"] = dir["out"],
            ["/var/lib/puppet/ssl/certs/ca.pem"] = tls.CaBundle,
            ["/var/lib/puppet/ssl/certs/syslog.example.pem"] = tls.Certificate,
            ["/var/lib/puppet/ssl/private_keys/syslog.example.pem"] = tls.Key,
            ["\"*.tools.eqiad1.wikimedia.cloud\""] = peers,
            ["net.enableDNS=\"on\""] = $"net.enableDNS=\"off\" workDirectory=\"{dir["work"]}\"",
            ["address=\"0.0.0.0\""] = $"address=\"{address}\"",
            ["port=\"20514\""] = $"port=\"{r._relpTlsPort}\"",
            ["port=\"6514\""] = $"port=\"{r.TcpPort}\"",
        });
        await File.WriteAllTextAsync(dir["rsyslog.conf"], conf);
        await r.StartProcessAsync();
        return r;
    }

    // Every key must be in the shipped file: a test of a configuration that changed shape must fail, not pass on defaults.
    private static string Replace(string text, Dictionary<string, string> replacements)
    {
        foreach (var (from, to) in replacements)
        {
            if (!text.Contains(from, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"the shipped receiver configuration no longer holds {from}");
            }

            text = text.Replace(from, to, StringComparison.Ordinal);
        }

        return text;
    }

    public string OutDir => _dir["out"];

    /// <summary>A receiver on RELP and plain TCP; with <paramref name="start"/> false its ports are chosen and its config written, and <see cref="StartProcessAsync"/> starts it later.</summary>
    public static async Task<RsyslogReceiver> StartAsync(bool start = true)
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
        if (start)
        {
            await r.StartProcessAsync();
        }

        return r;
    }

    public async Task StartProcessAsync()
    {
        string[] rsyslogd = ["rsyslogd", "-n", "-f", _dir["rsyslog.conf"], "-i", _dir["rsyslogd.pid"]];
        var command = _namespace is null ? rsyslogd : ["ip", .. _namespace.Exec(rsyslogd)];
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in command[1..])
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        foreach (var port in new[] { RelpPort, _relpTlsPort, TcpPort }.Where(p => p > 0))
        {
            await WaitForListenerAsync(port);
        }
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            lock (_dir)
            {
                Output += line + "\n";
            }
        }
    }

    private async Task WaitForListenerAsync(int port)
    {
        if (_namespace is null)
        {
            await Peer.WaitForTcpAsync(port, TimeSpan.FromSeconds(15));
            return;
        }

        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = await Run.ProcessAsync("ip", _namespace.Exec("bash", "-c", $"exec 3<>/dev/tcp/{_address}/{port}"), TimeSpan.FromSeconds(5));
            if (r.ExitCode == 0)
            {
                return;
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(15) || _process is { HasExited: true })
            {
                throw new InvalidOperationException($"rsyslogd did not listen on {_address}:{port} in {_namespace.Name}: {Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Stops rsyslogd with SIGTERM, so it writes out what it acknowledged (a SIGKILL would lose rsyslog's own queue).</summary>
    public async Task StopProcessAsync()
    {
        if (_process is { HasExited: false } p)
        {
            // In a namespace the process is `ip netns exec`, which exec()s rsyslogd: the same PID.
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
