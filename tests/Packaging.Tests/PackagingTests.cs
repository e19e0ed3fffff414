using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// The .debs on a real systemd host: a booted Debian container gets them with dpkg -i, configurations and dev
/// certificates, and runs the four units (Type=notify, watchdog, hardening) for real.
/// </summary>
[Collection(Debs)]
public sealed class PackagingTests
{
    /// <summary>The tests that build and install the .debs run one after the other (one build of dist/, one booted container at a time).</summary>
    public const string Debs = "debs";

    private static readonly string[] Daemons = ["coordinator", "node-agent", "builder-agent", "log-shipper"];

    internal static async Task<string[]> DebsAsync()
    {
        var dist = Path.Combine(Run.RepoRoot, "dist");
        var debs = Directory.Exists(dist) ? Directory.GetFiles(dist, "toolforge-*.deb") : [];
        // .debs older than the sources they are made of (a developer's earlier `./build.sh package`) are made again.
        var sources = new[] { "agents", "common", "packaging", "systemd" }.Select(d => Path.Combine(Run.RepoRoot, d))
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Max(File.GetLastWriteTimeUtc);
        if (debs.Length < 5 || debs.Min(File.GetLastWriteTimeUtc) < sources)
        {
            var r = await Run.ProcessAsync(Path.Combine(Run.RepoRoot, "build.sh"), ["package"], TimeSpan.FromMinutes(20));
            Assert.True(r.ExitCode == 0, "./build.sh package failed: " + r);
            debs = Directory.GetFiles(dist, "toolforge-*.deb");
        }

        Assert.Equal(5, debs.Length);
        return debs;
    }

    [Fact]
    public async Task Debs_InstallAndRun_OnARealSystemdHost()
    {
        var debs = await DebsAsync();
        await using var rsyslog = await RsyslogReceiver.StartAsync();
        using var dir = new TempDir("pkg");
        Directory.CreateDirectory(dir["debs"]);
        foreach (var d in debs)
        {
            File.Copy(d, Path.Combine(dir["debs"], Path.GetFileName(d)));
        }

        const string host = "pkg-node.example";
        var port = Peer.FreePort();
        using (var pki = DevPki.Create())
        {
            Directory.CreateDirectory(dir["certs"]);
            pki.WriteCa(dir["certs"]);
            pki.IssueTo(dir["certs"], "coordinator", server: true);
            pki.IssueTo(dir["certs"], host);
            pki.IssueTo(dir["certs"], "admin.example");
        }

        var reporting = new JsonObject
        {
            ["Address"] = $"https://127.0.0.1:{port}",
            ["Certificate"] = $"/etc/toolforge-agents/certs/{host}.pem",
            ["Key"] = $"/etc/toolforge-agents/certs/{host}.key",
            ["CaBundle"] = "/etc/toolforge-agents/certs/ca.pem",
        };
        var configs = new Dictionary<string, JsonObject>
        {
            ["coordinator"] = new()
            {
                ["Coordinator"] = new JsonObject
                {
                    ["ListenAddress"] = "127.0.0.1", ["Port"] = port,
                    ["Certificate"] = "/etc/toolforge-agents/certs/coordinator.pem", ["Key"] = "/etc/toolforge-agents/certs/coordinator.key",
                    ["CaBundle"] = "/etc/toolforge-agents/certs/ca.pem", ["Viewers"] = new JsonArray("admin.example"),
                    ["Builders"] = new JsonArray(host), ["Nodes"] = new JsonArray("pkg-*.example"),
                    ["HeartbeatInterval"] = "00:00:05",
                },
                ["Metrics"] = new JsonObject { ["Port"] = 0 },
            },
            ["node-agent"] = new()
            {
                ["Coordinator"] = reporting.DeepClone(),
                ["Metrics"] = new JsonObject { ["Port"] = 0 },
                // Nested sections two deep: the native binary's unknown-key check must see their keys (it once saw none).
                ["NodeAgent"] = new JsonObject
                {
                    ["Kubernetes"] = new JsonObject { ["Enabled"] = false, ["Conditions"] = new JsonObject { ["Enabled"] = false } },
                    ["Docker"] = new JsonObject { ["Endpoint"] = "unix:///run/no-docker.sock" },
                    ["Iptables"] = new JsonObject { ["Interval"] = "00:00:20" },
                },
            },
            ["builder-agent"] = new()
            {
                ["Coordinator"] = reporting.DeepClone(),
                ["Metrics"] = new JsonObject { ["Port"] = 0 },
                ["Builder"] = new JsonObject { ["Repository"] = "/usr/share/doc", ["DockerEndpoint"] = "unix:///run/no-docker.sock" },
            },
            ["log-shipper"] = new()
            {
                ["Coordinator"] = reporting.DeepClone(),
                ["Metrics"] = new JsonObject { ["Port"] = 0 },
                ["Shipper"] = new JsonObject
                {
                    ["Destinations"] = new JsonArray(new JsonObject { ["Url"] = $"relp://127.0.0.1:{rsyslog.RelpPort}" }),
                    ["StartAt"] = "tail",
                },
            },
        };
        foreach (var (name, config) in configs)
        {
            await File.WriteAllTextAsync(dir[name + ".json"], config.ToJsonString());
        }

        // A drop-in with a short watchdog, so "survives 3 x WatchdogSec" takes seconds.
        Directory.CreateDirectory(dir["dropin"]);
        await File.WriteAllTextAsync(dir["dropin/watchdog.conf"], "[Service]\nWatchdogSec=3s\n");
        await using var c = await SystemdContainer.BootAsync(new Dictionary<string, string>(),
            [$"--bind-ro={dir["debs"]}:/debs", $"--bind-ro={dir.Path}:/setup"]);

        async Task<ProcessResult> Sh(string command)
        {
            var r = await c.ExecAsync("sh", "-c", command);
            Assert.True(r.ExitCode == 0, $"`{command}` failed in the container: {r}");
            return r;
        }

        // Toolforge hosts have these groups (puppet's certificates, Docker's socket).
        await Sh("groupadd -f puppet && groupadd -f docker && groupadd -f systemd-journal");
        var install = await c.ExecAsync("sh", "-c", "dpkg -i /debs/*.deb");
        Assert.True(install.ExitCode == 0, "dpkg -i failed: " + install);
        // Every program is one native executable (NativeAOT: no runtime, no managed assemblies beside it); the
        // coordinator's SQLite library (Microsoft.Data.Sqlite's e_sqlite3, loaded at run time) is the one file beside one.
        foreach (var native in new[] { "toolforge-coordinator", "toolforge-node-agent", "toolforge-builder-agent", "toolforge-log-shipper", "agentctl" })
        {
            var files = (await Sh($"ls /usr/lib/toolforge-agents/{native}")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            string[] expected = native == "toolforge-coordinator" ? ["libe_sqlite3.so", native] : [native];
            Assert.Equal(expected, files);
        }

        // Every program has its manual page, made from its command definitions at package time; man renders it.
        foreach (var program in new[] { "toolforge-coordinator", "toolforge-node-agent", "toolforge-builder-agent", "toolforge-log-shipper", "agentctl" })
        {
            var page = await Sh($"zcat /usr/share/man/man1/{program}.1.gz");
            Assert.StartsWith($".TH {program.ToUpperInvariant().Replace("-", "\\-", StringComparison.Ordinal)} 1 ", page.Stdout, StringComparison.Ordinal);
            await File.WriteAllTextAsync(dir[$"{program}.1"], page.Stdout);
            var rendered = await Run.ProcessAsync("man", ["-l", dir[$"{program}.1"]], TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["MANPAGER"] = "cat", ["MANWIDTH"] = "100", ["LC_ALL"] = "C" });
            Assert.True(rendered.ExitCode == 0 && rendered.Stdout.Contains($"{program} completion", StringComparison.Ordinal), $"man {program}: {rendered}");
        }

        var lintian = await File.ReadAllTextAsync(Path.Combine(Run.RepoRoot, "dist", "lintian.txt"));
        Assert.DoesNotContain("manual-page", lintian, StringComparison.Ordinal);
        Assert.DoesNotContain("manpage", lintian, StringComparison.Ordinal);

        // A typo two sections deep is refused by the native binary, naming the key, with the exit code units do not restart on.
        await File.WriteAllTextAsync(dir["typo.json"], """{"NodeAgent":{"Kubernetes":{"Enabled":false,"Conditions":{"Enabeld":false}}}}""");
        var typo = await c.ExecAsync("/usr/bin/toolforge-node-agent", "--config", "/setup/typo.json");
        Assert.True(typo.ExitCode == 78, "a nested typo: " + typo);
        Assert.Contains("NodeAgent:Kubernetes:Conditions:Enabeld: unknown key", typo.Stderr + typo.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("NodeAgent:Kubernetes:Enabled: unknown key", typo.Stderr + typo.Stdout, StringComparison.Ordinal);

        // Installed but idle: no configuration yet.
        foreach (var d in Daemons)
        {
            Assert.Equal("enabled", await c.SystemctlAsync("is-enabled", $"toolforge-{d}"));
            Assert.NotEqual("active", await c.SystemctlAsync("is-active", $"toolforge-{d}"));
        }

        await Sh("mkdir -p /etc/toolforge-agents/certs && cp /setup/certs/* /etc/toolforge-agents/certs/ && chgrp -R puppet /etc/toolforge-agents/certs && chmod 0750 /etc/toolforge-agents/certs && chmod 0640 /etc/toolforge-agents/certs/*");
        foreach (var d in Daemons)
        {
            await Sh($"cp /setup/{d}.json /etc/toolforge-agents/{d}.json && mkdir -p /etc/systemd/system/toolforge-{d}.service.d && cp /setup/dropin/watchdog.conf /etc/systemd/system/toolforge-{d}.service.d/");
        }

        await Sh("systemctl daemon-reload");
        foreach (var d in Daemons)
        {
            var started = await c.ExecAsync("systemctl", "start", $"toolforge-{d}");
            var status = await c.ExecAsync("sh", "-c", $"systemctl status --no-pager toolforge-{d}; journalctl --no-pager -n 30 -u toolforge-{d}");
            Assert.True(started.ExitCode == 0, $"toolforge-{d} did not start: {started}\n{status.Stdout}");
        }

        // Type=notify: "active (running)" only after READY=1.
        foreach (var d in Daemons)
        {
            Assert.Equal("ActiveState=active\nSubState=running", await c.SystemctlAsync("show", "-p", "ActiveState", "-p", "SubState", $"toolforge-{d}"));
        }

        // The watchdog is fed: after 3 x WatchdogSec nothing was killed or restarted.
        await Task.Delay(TimeSpan.FromSeconds(10));
        foreach (var d in Daemons)
        {
            var show = await c.SystemctlAsync("show", "-p", "ActiveState", "-p", "NRestarts", "-p", "WatchdogUSec", $"toolforge-{d}");
            Assert.Contains("ActiveState=active", show, StringComparison.Ordinal);
            Assert.Contains("NRestarts=0", show, StringComparison.Ordinal);
            Assert.Contains("WatchdogUSec=3s", show, StringComparison.Ordinal);
        }

        // The node's agents report; agentctl on the host sees them.
        var ctl = new[] { "--server", $"https://127.0.0.1:{port}", "--cert", dir["certs/admin.example.pem"], "--key", dir["certs/admin.example.key"], "--ca", dir["certs/ca.pem"] };
        string nodes = string.Empty;
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            nodes = Run.DotnetToolAsync("agentctl", ["nodes", .. ctl]).GetAwaiter().GetResult().Stdout;
            return nodes.Contains(host, StringComparison.Ordinal) && nodes.Contains("node,builder,shipper", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)), "agentctl nodes: " + nodes);

        // A line logged in the container's journal reaches the rsyslogd on the host.
        var marker = "pkg-e2e-" + Guid.NewGuid().ToString("N")[..8];
        await Sh($"echo {marker} | systemd-cat -t e2e-test");
        Assert.True(await Peer.EventuallyAsync(() => rsyslog.Lines().Values.SelectMany(l => l).Any(l => l.Contains(marker, StringComparison.Ordinal)), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)),
            "the line did not arrive: " + (await c.ExecAsync("journalctl", "--no-pager", "-n", "40", "-u", "toolforge-log-shipper")).Stdout);
        Assert.Contains(rsyslog.Lines().Keys, k => k.EndsWith("/e2e-test.log", StringComparison.Ordinal));

        // Each stops cleanly within 10 s.
        foreach (var d in Daemons)
        {
            var sw = Stopwatch.StartNew();
            await Sh($"systemctl stop toolforge-{d}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"toolforge-{d} took {sw.Elapsed} to stop");
            var result = await c.SystemctlAsync("show", "-p", "Result", $"toolforge-{d}");
            Assert.Equal("Result=success", result);
        }

        await Sh("dpkg --purge toolforge-coordinator toolforge-node-agent toolforge-builder-agent toolforge-log-shipper toolforge-agentctl");
        var left = await c.ExecAsync("sh", "-c", "dpkg -l 'toolforge-*' 2>/dev/null | grep '^ii' || true; ls /usr/bin/toolforge-* /usr/lib/toolforge-agents 2>/dev/null || true");
        Assert.Equal(string.Empty, left.Stdout.Trim());
    }
}
