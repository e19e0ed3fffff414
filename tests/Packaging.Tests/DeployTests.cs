using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;
using Xunit.Abstractions;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// The production path in a booted Debian (systemd-nspawn, its own network namespace): the built .debs in a local apt
/// repository, the puppet module applied (worker, control and syslog roles on one host), and then the node-agent's
/// checks under the INSTALLED unit, read back through the coordinator (agentctl on the control role) and the agent's
/// own /metrics — never from a shell run of a check. Also: a second apply changes nothing, one hiera key restarts only
/// its daemon, a certificate renewal keeps every daemon reporting, apt-get remove stops and disables, purge removes state.
/// </summary>
[Collection(PackagingTests.Debs)]
public sealed class DeployTests(ITestOutputHelper output)
{
    private const string Host = "worker-1.deploy.test";
    private const string Admin = "admin.deploy.test";
    private const string KubeNode = NftReferenceData.Node; // the nftables reference rules are written for this node
    private static readonly string[] Daemons = ["toolforge-node-agent", "toolforge-log-shipper", "toolforge-coordinator"];

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private void Step(string what) => output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:F1} s] {what}");

    [Fact]
    public async Task PuppetApply_OnABootedHost_TheChecksReachVerdictsUnderTheInstalledUnits()
    {
        var cc = Peer.Require("clang", "clang");
        if (!File.Exists("/dev/fuse"))
        {
            throw Peer.Missing("/dev/fuse", "modprobe fuse (the FUSE mount a tenant's process waits on)");
        }

        var scan = Peer.Require("dpkg-scanpackages", "dpkg-dev");
        var debs = await PackagingTests.DebsAsync();
        Step("debs ready");
        using var dir = new TempDir("deploy");

        // The local apt repository: the .debs and their index, as an admin's repository would hold them.
        Directory.CreateDirectory(dir["repo"]);
        foreach (var d in debs)
        {
            File.Copy(d, Path.Combine(dir["repo"], Path.GetFileName(d)));
        }

        var index = await Run.ProcessAsync(scan, ["--multiversion", "."], TimeSpan.FromMinutes(1), workingDirectory: dir["repo"]);
        Assert.True(index.ExitCode == 0, index.ToString());
        await File.WriteAllTextAsync(dir["repo/Packages"], index.Stdout);

        // A FUSE daemon that answers INIT and then nothing, and its reader (tests/Packaging.Tests/fusestall.c).
        var compiled = await Run.ProcessAsync(cc, ["-O2", "-Wall", "-Werror", "-o", dir["fusestall"], Path.Combine(Run.RepoRoot, "tests", "Packaging.Tests", "fusestall.c")], TimeSpan.FromMinutes(1));
        Assert.True(compiled.ExitCode == 0, compiled.ToString());

        // The host's puppet certificate (server and client, as puppet's are), and an admin's for agentctl.
        Directory.CreateDirectory(dir["certs"]);
        using var pki = DevPki.Create();
        pki.WriteCa(dir["certs"]);
        pki.IssueTo(dir["certs"], Host, server: true);
        pki.IssueTo(dir["certs"], Admin);
        DevPki.WriteTo(dir["certs"], "renewed", pki.Issue(Host, server: true));

        // The cluster: the demo's Services (kube-proxy's iptables rules for them, tool-b/api's missing) and the Node.
        await using var api = await FakeKubeApiServer.StartAsync();
        var demoCluster = await File.ReadAllTextAsync(Path.Combine(Run.RepoRoot, "demo", "cluster.json"));
        api.PutKubectlJson(demoCluster);
        api.Put(FakeKubeApiServer.Node(KubeNode));
        api.WriteKubeconfig(dir["kubelet.conf"]);
        File.Copy(Path.Combine(Run.RepoRoot, "demo", "kube-proxy.rules"), dir["kube-proxy.rules"]);
        File.Copy(Path.Combine(NftReferenceData.Dir, "overall-rules.nft"), dir["kube-proxy.nft"]);

        // The module as a site would copy it, the site's manifest and its hiera.
        await CopyModuleAsync(dir["modules/toolforge_agents"]);
        await File.WriteAllTextAsync(dir["site.pp"], """
            include toolforge_agents::control
            include toolforge_agents::worker
            include toolforge_agents::syslog

            """);
        await File.WriteAllTextAsync(dir["hiera.yaml"], """
            ---
            version: 5
            defaults:
              datadir: /setup/hieradata
              data_hash: yaml_data
            hierarchy:
              - name: site
                path: site.yaml

            """);
        Directory.CreateDirectory(dir["hieradata"]);
        await File.WriteAllTextAsync(dir["hieradata/site.yaml"], SiteHiera("iptables"));

        // kubelet.service: a stand-in that logs what a kubelet logs when its runtime is gone, and stays up.
        var kubelet = """
            [Unit]
            Description=stand-in kubelet
            [Service]
            ExecStart=/bin/sh -c 'echo "E1206 kubelet.go:2855] Container runtime not ready: RuntimeReady=false reason:NoRuntime"; exec sleep infinity'
            """;

        await using var container = await SystemdContainer.BootAsync(new Dictionary<string, string> { ["kubelet.service"] = kubelet },
            ["--private-network", "--bind=/dev/fuse", $"--bind-ro={dir.Path}:/setup"]);
        Step("container booted");
        var netns = $"/proc/{container.LeaderPid}/ns/net";

        async Task<ProcessResult> Sh(string command)
        {
            var r = await container.ExecAsync("sh", "-c", command);
            Assert.True(r.ExitCode == 0, $"`{command}` failed in the container: {r}");
            return r;
        }

        // The cluster's API server, on the container's 127.0.0.1 as on the test's.
        await using var apiInside = InNetns.Forward(netns, api.Port, api.Port);
        using var http = InNetns.HttpClient(netns, TimeSpan.FromSeconds(10));

        // What puppet's own agent run leaves on a host: its certificate, key and CA, puppet:puppet, the key 0640.
        await Sh($"""
            set -e
            echo {Host} > /etc/hostname && hostname {Host}
            install -d -o puppet -g puppet -m 0771 /var/lib/puppet/ssl
            install -d -o puppet -g puppet -m 0755 /var/lib/puppet/ssl/certs
            install -d -o puppet -g puppet -m 0750 /var/lib/puppet/ssl/private_keys
            install -o puppet -g puppet -m 0644 /setup/certs/ca.pem /var/lib/puppet/ssl/certs/ca.pem
            install -o puppet -g puppet -m 0644 /setup/certs/{Host}.pem /var/lib/puppet/ssl/certs/{Host}.pem
            install -o puppet -g puppet -m 0640 /setup/certs/{Host}.key /var/lib/puppet/ssl/private_keys/{Host}.pem
            install -d /etc/kubernetes && install -m 0600 /setup/kubelet.conf /etc/kubernetes/kubelet.conf
            iptables-restore < /setup/kube-proxy.rules
            echo 'deb [trusted=yes] file:/setup/repo ./' > /etc/apt/sources.list.d/toolforge-agents.list
            apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/toolforge-agents.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
            useradd -u 50000 -m tenant
            """);

        var apply = await PuppetApplyAsync(container);
        Step($"first puppet apply: exit {apply.ExitCode}");
        Assert.True(apply.ExitCode == 2, "the first apply should change the host (exit 2 with --detailed-exitcodes): " + apply);
        foreach (var d in Daemons)
        {
            Assert.Equal("active", await container.SystemctlAsync("is-active", d));
            Assert.Equal("enabled", await container.SystemctlAsync("is-enabled", d));
        }

        // The kubelet (re)starts under the running agent, so its line is new to the journal rules.
        await Sh("systemctl restart kubelet.service");

        // A UDP flow to kube-dns's cluster IP that was never translated to an endpoint (its reply comes from the
        // cluster IP itself): the stale entry of kubernetes #122740, in the container's own conntrack table.
        await Sh("conntrack -I -p udp -s 10.0.0.5 -d 10.96.0.10 --sport 40000 --dport 53 -r 10.96.0.10 -q 10.0.0.5 --reply-port-src 53 --reply-port-dst 40000 -t 600");

        // A tenant's process held in D on a FUSE mount whose daemon stopped answering: it holds the mount open and
        // waits on a file there; a caught signal moves its wait from S to D (../shared/recipes/peers-recipes.md § 3).
        await Sh("mkdir -p /srv/tenant-data && (setsid /setup/fusestall mount /srv/tenant-data > /run/fusestall.out 2>&1 &) && for i in $(seq 100); do grep -q ready /run/fusestall.out && break; sleep 0.1; done; grep -q ready /run/fusestall.out");
        var daemonPid = (await Sh("pgrep -u 0 -f '^/setup/fusestall mount'")).Stdout.Trim();
        await Sh("(setsid setpriv --reuid=50000 --regid=50000 --clear-groups /setup/fusestall read /srv/tenant-data > /run/reader.out 2>&1 &)");
        var reader = "";
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            reader = container.ExecAsync("pgrep", "-u", "50000", "-f", "fusestall read").GetAwaiter().GetResult().Stdout.Trim();
            return reader.Length > 0 && container.ExecAsync("cat", $"/proc/{reader}/wchan").GetAwaiter().GetResult().Stdout.Trim() == "request_wait_answer";
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(200)), "the tenant's reader did not wait on the FUSE mount");
        await Sh($"kill -USR1 {reader}");
        Assert.True(await Peer.EventuallyAsync(() => container.ExecAsync("sh", "-c", $"cut -d' ' -f3 /proc/{reader}/stat").GetAwaiter().GetResult().Stdout.Trim() == "D",
            TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100)), "the reader did not enter D");
        Step($"tenant reader {reader} in D on /srv/tenant-data (FUSE daemon {daemonPid})");

        try
        {
            // Every verdict, through the coordinator (agentctl on the control role) ...
            var node = await EventuallyNodeAsync(container, n =>
                Check(n, "kube-proxy.iptables")?.State is "failing" or "warning"
                && Findings(n).Any(f => (string?)f["kind"] == "missing-rule" && ((string?)f["subject"] ?? "").Contains("tool-b/api", StringComparison.Ordinal))
                && Check(n, "kubelet.unit")?.State == "ok"
                && Check(n, "kubelet.node-ready")?.State == "ok"
                && Check(n, "kube-proxy.conntrack")?.State is "warning" or "failing"
                && Findings(n).Any(f => (string?)f["kind"] == "stale-conntrack" && ((string?)f["subject"] ?? "").Contains("kube-system/kube-dns", StringComparison.Ordinal))
                && Check(n, "journal.runtime-down")?.State == "failing"
                && Findings(n).Any(f => (string?)f["kind"] == "stuck-process" && ((string?)f["subject"] ?? "").StartsWith(reader + " ", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(90));
            Step("verdicts seen through agentctl node");
            output.WriteLine(string.Join("\n", Checks(node).Select(c => $"  {c.Name}: {c.State}: {c.Message}")));
            Assert.Contains("active", Check(node, "kubelet.unit")!.Message, StringComparison.Ordinal);
            Assert.Contains("Container runtime not ready", Check(node, "journal.runtime-down")!.Message, StringComparison.Ordinal);
            Assert.Contains("10.0.0.5", Findings(node).Single(f => (string?)f["kind"] == "stale-conntrack").ToJsonString(), StringComparison.Ordinal);
            var stuck = Findings(node).Single(f => (string?)f["kind"] == "stuck-process" && ((string?)f["subject"] ?? "").StartsWith(reader + " ", StringComparison.Ordinal));
            Assert.Equal($"{reader} fusestall", (string?)stuck["subject"]);
            Assert.Equal("request_wait_answer", (string?)stuck["details"]!["wchan"]);
            Assert.Equal("/srv/tenant-data (fuse.tfastall)", (string?)stuck["details"]!["mount"]);
            Assert.Contains("on /srv/tenant-data (fuse.tfastall)", Check(node, "node.stuck-processes")!.Message, StringComparison.Ordinal);

            // ... and the agent's own /metrics, inside the container.
            var metrics = await http.GetStringAsync("http://127.0.0.1:9502/metrics");
            Assert.Contains("toolforge_check_state{check=\"kube-proxy.iptables\"} 2", metrics, StringComparison.Ordinal);
            Assert.Contains("toolforge_check_state{check=\"kubelet.unit\"} 0", metrics, StringComparison.Ordinal);
            Assert.Contains("toolforge_stuck_processes{wchan=\"request_wait_answer\"} 1", metrics, StringComparison.Ordinal);
        }
        finally
        {
            // Undo: the daemon's end closes the connection (the reader's open fails), then the stale mount goes.
            await container.ExecAsync("sh", "-c", $"kill -KILL {daemonPid}; umount -l /srv/tenant-data");
        }

        // The shipper's lines reach the syslog role's receiver over RELP/TLS.
        var marker = "deploy-e2e-" + Guid.NewGuid().ToString("N")[..8];
        await Sh($"echo {marker} | systemd-cat -t deploy-test");
        Assert.True(await Peer.EventuallyAsync(() => container.ExecAsync("sh", "-c", $"grep -rl {marker} /srv/syslog").GetAwaiter().GetResult().ExitCode == 0,
            TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)), "the journal line did not reach /srv/syslog: " + (await container.ExecAsync("journalctl", "--no-pager", "-n", "30", "-u", "toolforge-log-shipper", "-u", "rsyslog")).Stdout);
        Step("journal line filed by the syslog role");

        // A second apply changes nothing and restarts nothing.
        var before = await InvocationsAsync(container);
        var again = await PuppetApplyAsync(container);
        Step($"second puppet apply: exit {again.ExitCode}");
        Assert.True(again.ExitCode == 0, "the second apply changed something: " + again);
        Assert.Equal(before, await InvocationsAsync(container));

        // One hiera key (kube-proxy's mode) restarts the node-agent alone; the audit now reads kube-proxy's nftables
        // table: the reference ruleset with one Service's element removed, under the reference Services.
        foreach (var item in JsonNode.Parse(demoCluster)!["items"]!.AsArray())
        {
            var kind = (string?)item!["kind"] switch { "Service" => "services", "EndpointSlice" => "endpointslices", _ => null };
            if (kind is not null)
            {
                api.Delete(kind, (string?)item["metadata"]!["namespace"], (string)item["metadata"]!["name"]!);
            }
        }

        api.PutKubectlJson(NftReferenceData.KubectlJson("overall-rules"));
        await Sh("iptables -t nat -F && nft -f /setup/kube-proxy.nft && nft delete element ip kube-proxy service-ips '{ 172.30.0.41 . tcp . 80 }'");
        await File.WriteAllTextAsync(dir["hieradata/site.yaml"], SiteHiera("nftables"));
        var modeChange = await PuppetApplyAsync(container);
        Assert.True(modeChange.ExitCode == 2, "the hiera change did not change the host: " + modeChange);
        var after = await InvocationsAsync(container);
        Assert.NotEqual(before["toolforge-node-agent"], after["toolforge-node-agent"]);
        Assert.Equal(before["toolforge-log-shipper"], after["toolforge-log-shipper"]);
        Assert.Equal(before["toolforge-coordinator"], after["toolforge-coordinator"]);
        var nft = await EventuallyNodeAsync(container, n =>
            Check(n, "kube-proxy.nftables")?.State is "failing" or "warning"
            && Findings(n).Any(f => (string?)f["kind"] == "missing-rule" && ((string?)f["subject"] ?? "").Contains("ns1/svc1", StringComparison.Ordinal))
            && (Check(n, "kube-proxy.iptables") is null || Check(n, "kube-proxy.iptables")!.Message.Contains("not in use", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60));
        Step("nftables verdict after the hiera change: " + Check(nft, "kube-proxy.nftables")!.Message);
        Assert.DoesNotContain(Findings(nft), f => ((string?)f["subject"] ?? "").Contains("tool-b/api", StringComparison.Ordinal));

        // Renewal: puppet writes the new key, then the new certificate (each renamed into place, one after the other).
        // Then the site revokes the old certificate (the coordinator's DeniedCertificates, a hiera key: the coordinator
        // alone restarts). Both agents report again with the new certificate, neither restarted.
        var renewing = await InvocationsAsync(container);
        var oldSerial = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(dir[$"certs/{Host}.pem"])).SerialNumber;
        var renewed = Stopwatch.StartNew();
        await Sh($"""
            set -e
            install -o puppet -g puppet -m 0640 /setup/certs/renewed.key /var/lib/puppet/ssl/private_keys/.{Host}.new && mv /var/lib/puppet/ssl/private_keys/.{Host}.new /var/lib/puppet/ssl/private_keys/{Host}.pem
            sleep 1
            install -o puppet -g puppet -m 0644 /setup/certs/renewed.pem /var/lib/puppet/ssl/certs/.{Host}.new && mv /var/lib/puppet/ssl/certs/.{Host}.new /var/lib/puppet/ssl/certs/{Host}.pem
            """);
        await File.WriteAllTextAsync(dir["hieradata/site.yaml"], SiteHiera("nftables", oldSerial));
        var revoke = await PuppetApplyAsync(container);
        Assert.True(revoke.ExitCode == 2, "revoking the old certificate did not change the host: " + revoke);
        var revoked = DateTimeOffset.UtcNow;
        var afterRevoke = await InvocationsAsync(container);
        Assert.NotEqual(renewing["toolforge-coordinator"], afterRevoke["toolforge-coordinator"]);
        Assert.Equal(renewing["toolforge-node-agent"], afterRevoke["toolforge-node-agent"]);
        Assert.Equal(renewing["toolforge-log-shipper"], afterRevoke["toolforge-log-shipper"]);
        await EventuallyNodeAsync(container, n => AgentReports(n) is var r && r.Count == 2 && r.Values.All(t => t > revoked), TimeSpan.FromSeconds(60));
        var marker2 = "deploy-renewed-" + Guid.NewGuid().ToString("N")[..8];
        await Sh($"echo {marker2} | systemd-cat -t deploy-test");
        Assert.True(await Peer.EventuallyAsync(() => container.ExecAsync("sh", "-c", $"grep -rl {marker2} /srv/syslog").GetAwaiter().GetResult().ExitCode == 0,
            TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1)), "after the renewal the journal line did not reach /srv/syslog");
        Step($"renewal: key and certificate replaced, the old one revoked, both agents reporting again and a line shipped {renewed.Elapsed.TotalSeconds:F1} s after the key was written ({(DateTimeOffset.UtcNow - revoked).TotalSeconds:F1} s after the coordinator restarted)");

        // apt-get remove stops and disables the unit (configuration kept); purge removes its state.
        await Sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq toolforge-node-agent");
        Assert.NotEqual("active", await container.SystemctlAsync("is-active", "toolforge-node-agent"));
        Assert.NotEqual("enabled", await container.SystemctlAsync("is-enabled", "toolforge-node-agent"));
        await Sh("test -d /var/lib/toolforge-node-agent && test -f /etc/toolforge-agents/node-agent.json");
        await Sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq toolforge-node-agent toolforge-log-shipper");
        var left = await container.ExecAsync("sh", "-c", "ls -d /var/lib/toolforge-node-agent /var/lib/toolforge-log-shipper /var/lib/private/toolforge-log-shipper /usr/bin/toolforge-node-agent 2>/dev/null; dpkg -l toolforge-node-agent toolforge-log-shipper 2>/dev/null | grep '^[ir]' || true");
        Assert.Equal(string.Empty, left.Stdout.Trim());
        Assert.Equal("active", await container.SystemctlAsync("is-active", "toolforge-coordinator"));
        Step("removed and purged");
    }

    private static string SiteHiera(string kubeProxyMode, string? deniedSerial = null) => $$"""
        ---
        toolforge_agents::coordinator_address: https://127.0.0.1:9500
        toolforge_agents::initial_interval: '00:00:05'
        toolforge_agents::control::coordinator:
          Admins: [{{Admin}}]
          Builders: []
          Nodes: ['*.deploy.test']
          HeartbeatInterval: '00:00:05'
          SweepInterval: '00:00:01'
          DeniedCertificates: {{(deniedSerial is null ? "[]" : $"['{deniedSerial}']")}}
        toolforge_agents::log_shipper::destinations:
          - Url: relp+tls://127.0.0.1:20514
        toolforge_agents::syslog::permitted_peers: ['*.deploy.test']
        toolforge_agents::worker::node_agent:
          NodeName: {{KubeNode}}
          Runtime: cri
          KubeProxy: {Mode: {{kubeProxyMode}}}
          Iptables: {Interval: '00:00:03'}
          Nftables: {Interval: '00:00:03', ForbidNodePorts: false}
          Conntrack: {Interval: '00:00:03', GracePeriod: '00:00:03'}
          StuckProcesses: {Interval: '00:00:02', After: '00:00:06'}
          Journal: {Units: [kubelet.service], Kernel: true, Rules: [], EvaluateInterval: '00:00:02'}

        """;

    private static async Task CopyModuleAsync(string to)
    {
        // cp -rL: files/ links the shipped alert rules (README "Deploying with puppet").
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        var r = await Run.ProcessAsync("cp", ["-rL", Path.Combine(Run.RepoRoot, "packaging", "puppet", "toolforge_agents"), to], TimeSpan.FromMinutes(1));
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var spec in new[] { "spec", ".bundle", "Gemfile.lock" }.Select(s => Path.Combine(to, s)).Where(Directory.Exists))
        {
            Directory.Delete(spec, recursive: true);
        }
    }

    private async Task<ProcessResult> PuppetApplyAsync(SystemdContainer container)
    {
        var sw = Stopwatch.StartNew();
        var r = await container.ExecAsync("puppet", "apply", "--detailed-exitcodes", "--color=false", "--modulepath=/setup/modules",
            "--hiera_config=/setup/hiera.yaml", "/setup/site.pp");
        output.WriteLine($"puppet apply: exit {r.ExitCode} in {sw.Elapsed.TotalSeconds:F1} s\n{r.Stdout}{r.Stderr}");
        return r;
    }

    // Each daemon's InvocationID: a new one means systemd started it again.
    private static async Task<Dictionary<string, string>> InvocationsAsync(SystemdContainer container)
    {
        var ids = new Dictionary<string, string>();
        foreach (var d in Daemons)
        {
            ids[d] = await container.SystemctlAsync("show", "-p", "InvocationID", "--value", d);
        }

        return ids;
    }

    private static async Task<JsonObject> NodeAsync(SystemdContainer container)
    {
        var r = await container.ExecAsync("agentctl", "node", Host, "-o", "json", "--server", "https://127.0.0.1:9500",
            "--cert", $"/setup/certs/{Admin}.pem", "--key", $"/setup/certs/{Admin}.key", "--ca", "/setup/certs/ca.pem");
        Assert.True(r.ExitCode is 0 or 1, "agentctl node: " + r);
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    private async Task<JsonObject> EventuallyNodeAsync(SystemdContainer container, Func<JsonObject, bool> done, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        JsonObject? last = null;
        string lastProblem = "";
        while (sw.Elapsed < timeout)
        {
            try
            {
                last = await NodeAsync(container);
                if (done(last))
                {
                    return last;
                }
            }
            catch (Exception ex) when (ex is Xunit.Sdk.XunitException or System.Text.Json.JsonException)
            {
                lastProblem = ex.Message;
            }

            await Task.Delay(1000);
        }

        var journal = await container.ExecAsync("journalctl", "--no-pager", "-n", "40", "-u", "toolforge-node-agent", "-u", "toolforge-coordinator");
        Assert.Fail($"not seen within {timeout}: {lastProblem}\n" + (last is null ? "(no answer)" : string.Join("\n", Checks(last).Select(c => $"{c.Name}: {c.State}: {c.Message}")))
            + "\nfindings: " + string.Join("\n", last is null ? [] : Findings(last).Select(f => f.ToJsonString())) + "\n" + journal.Stdout);
        throw new UnreachableException();
    }

    private sealed record CheckView(string Name, string State, string Message, IReadOnlyList<string> Values);

    private static IEnumerable<CheckView> Checks(JsonObject node) =>
        (node["checks"] as JsonArray ?? []).Select(c => new CheckView((string?)c!["name"] ?? "", (string?)c["state"] ?? "ok", (string?)c["message"] ?? "",
            (c["values"] as JsonObject)?.Select(kv => kv.Key).ToList() ?? []));

    private static CheckView? Check(JsonObject node, string name) => Checks(node).FirstOrDefault(c => c.Name == name);

    private static IEnumerable<JsonObject> Findings(JsonObject node) => (node["findings"] as JsonArray ?? []).Select(f => f!.AsObject());

    // kind (node-agent, log-shipper) -> that agent's last report.
    private static Dictionary<string, DateTimeOffset> AgentReports(JsonObject node) =>
        (node["summary"]?["agents"] as JsonArray ?? []).ToDictionary(a => (string?)a!["kind"] ?? "", a => DateTimeOffset.Parse((string)a!["lastReport"]!, CultureInfo.InvariantCulture));
}
