using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// The shipped alert rules: a promtool unit test for every alert, `promtool check metrics` on every daemon's /metrics,
/// and Debian's Prometheus and Alertmanager against the real daemons, routing to a webhook this test holds.
/// </summary>
public sealed partial class AlertsTests
{
    private static string PrometheusDir => Path.Combine(Run.RepoRoot, "packaging", "prometheus");

    private static string RulesFile => Path.Combine(PrometheusDir, "toolforge-agents.rules.yml");

    [Fact]
    public async Task PromtoolUnitTests_Pass()
    {
        var promtool = Peer.Require("promtool", "prometheus");
        var tests = Directory.GetFiles(PrometheusDir, "*.test.yml");
        Assert.NotEmpty(tests);
        var r = await Run.ProcessAsync(promtool, ["test", "rules", .. tests], workingDirectory: PrometheusDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("SUCCESS", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryShippedAlert_HasATestThatSeesItFire_AndOneThatSeesItSilent()
    {
        var alerts = AlertName().Matches(File.ReadAllText(RulesFile)).Select(m => m.Groups[1].Value).ToList();
        Assert.True(alerts.Count >= 10, string.Join(", ", alerts));
        var tests = string.Join("\n", Directory.GetFiles(PrometheusDir, "*.test.yml").Select(File.ReadAllText));
        var cases = TestCase().Matches(tests).Select(m => (Alert: m.Groups[1].Value, Silent: m.Groups[2].Value.Trim() == "[]")).ToList();
        var untested = alerts.Where(a => !cases.Any(c => c.Alert == a && !c.Silent)).ToList();
        var neverSilent = alerts.Where(a => !cases.Any(c => c.Alert == a && c.Silent)).ToList();
        Assert.True(untested.Count == 0, $"alerts without a firing test in packaging/prometheus/*.test.yml: {string.Join(", ", untested)}");
        Assert.True(neverSilent.Count == 0, $"alerts without a test that they stay silent: {string.Join(", ", neverSilent)}");
    }

    [Fact]
    public async Task FourAlerts_FireAndResolve_ThroughPrometheusAndAlertmanager_AndEveryDaemonsMetricsPassPromtool()
    {
        var promtool = Peer.Require("promtool", "prometheus");
        var prometheus = Peer.Require("prometheus", "prometheus");
        var alertmanager = Peer.Require("prometheus-alertmanager", "prometheus-alertmanager");
        Peer.Require("iptables-restore", "iptables");
        const string node = "worker-alerts.example";
        using var dir = new TempDir("alerts");
        var ports = new { Coordinator = Peer.FreePort(), NodeAgent = Peer.FreePort(), Shipper = Peer.FreePort(), Builder = Peer.FreePort(), Prometheus = Peer.FreePort(), Alertmanager = Peer.FreePort(), Hook = Peer.FreePort(), Healthz = Peer.FreePort() };

        await using var coordinator = await CoordinatorHarness.StartAsync(asProcess: true, editConfig: c =>
        {
            c["Metrics"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = ports.Coordinator };
            c["Coordinator"]!["HeartbeatInterval"] = "00:00:01";
            c["Coordinator"]!["SweepInterval"] = "00:00:01";
        });
        await using var api = await FakeKubeApiServer.StartAsync();
        api.Put(FakeKubeApiServer.Node(node));
        await using var ns = await NetNamespace.CreateAsync();
        // A Service that is gone left its NAT rule behind: a stale-rule finding.
        const string leftover = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n"
            + "-A KUBE-SERVICES -d 10.96.99.99/32 -p tcp -m comment --comment \"gone/web:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA\nCOMMIT\n";
        await ns.RestoreAsync(leftover);

        // The node-agent: kubelet's healthz port has nobody behind it (kubelet.healthz failing).
        var agentConfig = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = ports.NodeAgent },
            ["Coordinator"] = coordinator.AgentSection(node),
            ["NodeAgent"] = new JsonObject
            {
                ["NodeName"] = node,
                ["StateDirectory"] = dir["agent-state"],
                ["DBusAddress"] = $"unix:path={dir["no-bus"]}",
                ["Runtime"] = "cri",
                ["Cri"] = new JsonObject { ["Endpoint"] = $"unix://{dir["no-containerd.sock"]}", ["Interval"] = "00:00:02" },
                ["Kubelet"] = new JsonObject { ["HealthzUrl"] = $"http://127.0.0.1:{ports.Healthz}/healthz", ["Interval"] = "00:00:01" },
                ["Kubernetes"] = new JsonObject { ["Kubeconfig"] = api.WriteKubeconfig(dir["kubeconfig"]) },
                ["KubeProxy"] = new JsonObject { ["Mode"] = "iptables" },
                ["Iptables"] = new JsonObject { ["Command"] = "ip", ["Arguments"] = new JsonArray(ns.SaveCommand.Select(a => (JsonNode)a).ToArray()), ["Interval"] = "00:00:01", ["CheckOtherBackend"] = false },
                ["Conntrack"] = new JsonObject { ["Enabled"] = false },
                ["Journal"] = new JsonObject { ["Enabled"] = false },
                ["TenantPolicy"] = new JsonObject { ["Enabled"] = false },
            },
        };
        await File.WriteAllTextAsync(dir["node-agent.json"], agentConfig.ToJsonString());
        var agent = BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);

        // The log-shipper: its receiver is down (nothing acknowledged while entries wait).
        await using var rsyslog = await RsyslogReceiver.StartAsync(start: false);
        await JournalFiles.WriteAsync(dir["host.journal"], Enumerable.Range(0, 20).Select(i =>
            (IReadOnlyDictionary<string, string>)JournalFiles.Entry(DateTimeOffset.UtcNow.AddMinutes(-2).AddSeconds(i), node, "kubelet", $"line {i}", 4)));
        var shipperConfig = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = ports.Shipper },
            ["Shipper"] = new JsonObject
            {
                ["Destinations"] = new JsonArray(new JsonObject { ["Url"] = $"relp://127.0.0.1:{rsyslog.RelpPort}" }),
                ["JournalFiles"] = new JsonArray(dir["host.journal"]),
                ["StateFile"] = dir["shipper-state"],
                ["StartAt"] = "head",
            },
        };
        await File.WriteAllTextAsync(dir["shipper.json"], shipperConfig.ToJsonString());
        await using var shipper = BackgroundProcess.StartTool("toolforge-log-shipper", ["--config", dir["shipper.json"]]);

        // The builder-agent (for its /metrics only).
        Directory.CreateDirectory(dir["images"]);
        var builderConfig = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = ports.Builder },
            ["Builder"] = new JsonObject { ["Repository"] = dir["images"], ["Registry"] = "127.0.0.1:1", ["DockerEndpoint"] = $"unix://{dir["no-docker.sock"]}" },
        };
        await File.WriteAllTextAsync(dir["builder.json"], builderConfig.ToJsonString());
        await using var builder = BackgroundProcess.StartTool("toolforge-builder-agent", ["serve", "--config", dir["builder.json"]]);

        // Prometheus + Alertmanager on loopback; the shipped rules with every duration cut to seconds.
        await File.WriteAllTextAsync(dir["rules.yml"], Shorten(await File.ReadAllTextAsync(RulesFile)));
        await File.WriteAllTextAsync(dir["prometheus.yml"], $$"""
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: ['{{dir["rules.yml"]}}']
            alerting:
              alertmanagers: [{static_configs: [{targets: ['127.0.0.1:{{ports.Alertmanager}}']}]}]
            scrape_configs:
              - {job_name: coordinator, static_configs: [{targets: ['127.0.0.1:{{ports.Coordinator}}']}]}
              - {job_name: node-agent, static_configs: [{targets: ['127.0.0.1:{{ports.NodeAgent}}']}]}
              - {job_name: log-shipper, static_configs: [{targets: ['127.0.0.1:{{ports.Shipper}}']}]}
            """);
        await File.WriteAllTextAsync(dir["alertmanager.yml"], $$"""
            route: {receiver: hook, group_by: [alertname, instance, kind, check, state], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
            receivers:
              - name: hook
                webhook_configs: [{url: 'http://127.0.0.1:{{ports.Hook}}/hook', send_resolved: true}]
            """);
        var checkConfig = await Run.ProcessAsync(promtool, ["check", "config", dir["prometheus.yml"]]);
        Assert.True(checkConfig.ExitCode == 0, checkConfig.ToString());

        using var hook = new Webhook(ports.Hook);
        await using var am = BackgroundProcess.Start(alertmanager, [$"--config.file={dir["alertmanager.yml"]}", $"--storage.path={dir["amdata"]}",
            $"--web.listen-address=127.0.0.1:{ports.Alertmanager}", "--cluster.listen-address="]);
        await using var prom = BackgroundProcess.Start(prometheus, [$"--config.file={dir["prometheus.yml"]}", $"--storage.tsdb.path={dir["promdata"]}",
            $"--web.listen-address=127.0.0.1:{ports.Prometheus}"]);
        using var healthz = new Healthz(ports.Healthz);
        try
        {
            // Every daemon's /metrics passes promtool check metrics.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            foreach (var (name, port) in new[] { ("coordinator", ports.Coordinator), ("node-agent", ports.NodeAgent), ("log-shipper", ports.Shipper), ("builder-agent", ports.Builder) })
            {
                string? text = null;
                Assert.True(await Peer.EventuallyAsync(() =>
                {
                    try
                    {
                        text = http.GetStringAsync($"http://127.0.0.1:{port}/metrics").GetAwaiter().GetResult();
                        return text.Contains("# TYPE toolforge_", StringComparison.Ordinal);
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(500)), $"{name} serves no /metrics on {port}: {(name == "builder-agent" ? builder.Output : string.Empty)}");
                var check = await Run.ProcessAsync(promtool, ["check", "metrics"], stdin: text);
                Assert.True(check.ExitCode == 0 && (check.Stdout + check.Stderr).Trim().Length == 0, $"promtool check metrics on {name}'s /metrics:\n{check}");
            }

            // Fire: a kube-proxy finding, a failing check, a stuck shipper.
            await hook.WaitAsync("ToolforgeKubeProxyRulesWrong", "firing", a => a["labels"]?["kind"]?.ToString() == "stale-rule", agent);
            await hook.WaitAsync("ToolforgeCheckFailing", "firing", a => a["labels"]?["check"]?.ToString() == "kubelet.healthz", agent);
            await hook.WaitAsync("ToolforgeLogShipperStuck", "firing", _ => true, shipper);

            // Resolve: the rule is gone, kubelet answers, the receiver is up.
            await ns.RestoreAsync("*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n");
            healthz.Start();
            await rsyslog.StartProcessAsync();
            await hook.WaitAsync("ToolforgeKubeProxyRulesWrong", "resolved", a => a["labels"]?["kind"]?.ToString() == "stale-rule", agent);
            await hook.WaitAsync("ToolforgeCheckFailing", "resolved", a => a["labels"]?["check"]?.ToString() == "kubelet.healthz", agent);
            await hook.WaitAsync("ToolforgeLogShipperStuck", "resolved", _ => true, shipper);

            // A node that stops reporting is stale; reporting again resolves it.
            Assert.Equal(0, await agent.StopAsync(TimeSpan.FromSeconds(15)));
            await hook.WaitAsync("ToolforgeNodeStale", "firing", a => a["labels"]?["state"]?.ToString() == "stale", agent);
            await agent.DisposeAsync();
            agent = BackgroundProcess.StartTool("toolforge-node-agent", ["--config", dir["node-agent.json"]]);
            await hook.WaitAsync("ToolforgeNodeStale", "resolved", a => a["labels"]?["state"]?.ToString() == "stale", agent);
        }
        finally
        {
            await agent.DisposeAsync();
        }
    }

    // The shipped rules, with `for:` and range durations cut to seconds: the expressions and labels are the shipped ones.
    private static string Shorten(string rules) =>
        RangeDuration().Replace(ForDuration().Replace(rules, "for: 3s"), "[15s]");

    [GeneratedRegex(@"^\s*- alert: (\S+)", RegexOptions.Multiline)]
    private static partial Regex AlertName();

    [GeneratedRegex(@"alertname: (\S+)\s*\n\s*exp_alerts:(.*)")]
    private static partial Regex TestCase();

    [GeneratedRegex(@"for: \d+[smh]")]
    private static partial Regex ForDuration();

    [GeneratedRegex(@"\[\d+[smh]\]")]
    private static partial Regex RangeDuration();

    /// <summary>Alertmanager's webhook receiver: every notification's alerts, as they arrive.</summary>
    private sealed class Webhook : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly ConcurrentQueue<JsonObject> _alerts = new();

        public Webhook(int port)
        {
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _ = Task.Run(LoopAsync);
        }

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                using (var reader = new StreamReader(ctx.Request.InputStream))
                {
                    if (JsonNode.Parse(await reader.ReadToEndAsync())?["alerts"] is JsonArray alerts)
                    {
                        foreach (var a in alerts.OfType<JsonObject>())
                        {
                            _alerts.Enqueue(a);
                        }
                    }
                }

                ctx.Response.StatusCode = 200;
                ctx.Response.Close();
            }
        }

        public async Task WaitAsync(string alert, string status, Func<JsonObject, bool> match, BackgroundProcess context)
        {
            var seen = await Peer.EventuallyAsync(() => _alerts.Any(a => a["labels"]?["alertname"]?.ToString() == alert && a["status"]?.ToString() == status && match(a)),
                TimeSpan.FromSeconds(90), TimeSpan.FromMilliseconds(200));
            Assert.True(seen, $"{alert} never reached the webhook as {status}; it got: {string.Join(", ", _alerts.Select(a => $"{a["labels"]?["alertname"]}={a["status"]}"))}\n{context.Output[^Math.Min(3000, context.Output.Length)..]}");
        }

        public void Dispose() => _listener.Close();
    }

    /// <summary>A kubelet /healthz that answers "ok" once started.</summary>
    private sealed class Healthz(int port) : IDisposable
    {
        private readonly HttpListener _listener = new();

        public void Start()
        {
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    try
                    {
                        var ctx = await _listener.GetContextAsync();
                        var body = "ok"u8.ToArray();
                        ctx.Response.StatusCode = 200;
                        await ctx.Response.OutputStream.WriteAsync(body);
                        ctx.Response.Close();
                    }
                    catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                    {
                        return;
                    }
                }
            });
        }

        public void Dispose()
        {
            if (_listener.IsListening)
            {
                _listener.Close();
            }
        }
    }
}
