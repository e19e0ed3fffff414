using System.Globalization;
using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>`./build.sh demo` on a fresh clone shows every agent doing its real job; `./build.sh demo stop` leaves nothing.</summary>
public sealed class DemoTests
{
    [Fact]
    public async Task Demo_OnAFreshClone_ShowsTheFindingTheBuildAndAShippedLine_AndStopLeavesNothing()
    {
        using var tmp = new TempDir("demo");
        var clone = tmp["clone"];
        var git = await Run.ProcessAsync("git", ["clone", "-q", Run.RepoRoot, clone], TimeSpan.FromMinutes(2));
        Assert.True(git.ExitCode == 0, git.ToString());

        // Its own ports and namespace, so a demo someone left running on this machine does not collide; its own HOME.
        var port = FreeBase();
        var netns = "tfa-demo-" + Guid.NewGuid().ToString("N")[..6];
        var env = new Dictionary<string, string>
        {
            ["DEMO_PORT"] = port.ToString(CultureInfo.InvariantCulture),
            ["DEMO_NETNS"] = netns,
            ["HOME"] = tmp["home"],
            ["XDG_CONFIG_HOME"] = tmp["home/.config"],
            ["DOTNET_CLI_HOME"] = tmp["home"],
            ["NUGET_PACKAGES"] = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
        };
        Directory.CreateDirectory(tmp["home"]);
        try
        {
            // A bound against a hang, not a speed goal: the fresh clone's NativeAOT publishes take most of it (8 min 22 s
            // for four in a quiet CI run on this 2-core machine, 10 min 22 s beside two other builds; the coordinator's,
            // the fifth since 2026-12-07, adds 1-2 min); "Demo up in N s" says how long.
            var demo = await Run.ProcessAsync(Path.Combine(clone, "build.sh"), ["demo"], TimeSpan.FromMinutes(20), env, workingDirectory: clone);
            Assert.True(demo.ExitCode == 0, demo.ToString());
            Assert.Contains("Stop everything with: ./build.sh demo stop", demo.Stdout, StringComparison.Ordinal);

            string[] ctl = ["--config", Path.Combine(clone, ".demo", "agentctl.json")];
            async Task<JsonNode> Json(params string[] args)
            {
                var r = await Run.ProcessAsync(Path.Combine(clone, "out", "bin", "agentctl"), [.. args, "-o", "json", .. ctl], TimeSpan.FromSeconds(30), env);
                Assert.True(r.ExitCode == 0, r.ToString());
                return JsonNode.Parse(r.Stdout)!;
            }

            var findings = (await Json("findings"))["findings"]!.AsArray();
            Assert.Contains(findings, f => (string?)f!["kind"] == "missing-rule" && ((string?)f["subject"])!.StartsWith("tool-b/api:http", StringComparison.Ordinal)
                && (string?)f["node"] == "demo-worker-1.toolforge.test");
            Assert.Contains(findings, f => (string?)f!["kind"] == "journal-rule" && (string?)f["subject"] == "oom-kill");

            var node = (await Json("nodes"))["nodes"]!.AsArray().Single()!;
            Assert.Equal(["node-agent", "builder-agent", "log-shipper"], node["agents"]!.AsArray().Select(a => (string)a!["kind"]!));

            var build = (await Json("builds"))["builds"]!.AsArray().Single()!;
            Assert.Equal("succeeded", (string?)build["state"]);

            var shipped = Directory.EnumerateFiles(Path.Combine(clone, ".demo", "syslog"), "*.log", SearchOption.AllDirectories).SelectMany(File.ReadLines).ToList();
            Assert.Contains(shipped, l => l.Contains("Memory cgroup out of memory", StringComparison.Ordinal));

            // The kubelet checks that cannot apply say so, instead of failing.
            var detail = await Json("node", "demo-worker-1.toolforge.test");
            var healthz = detail["checks"]!.AsArray().Single(c => (string?)c!["name"] == "kubelet.healthz")!;
            Assert.Equal("not applicable on this host (no kubelet.service)", (string?)healthz["message"]);
        }
        finally
        {
            var stop = await Run.ProcessAsync(Path.Combine(clone, "build.sh"), ["demo", "stop"], TimeSpan.FromMinutes(2), env, workingDirectory: clone);
            Assert.True(stop.ExitCode == 0, stop.ToString());
        }

        await Task.Delay(500);
        Assert.DoesNotContain(TestProcesses.All(), p => p.CommandLine.Contains(clone, StringComparison.Ordinal));
        var namespaces = await Run.ProcessAsync("ip", ["netns", "list"]);
        Assert.DoesNotContain(netns, namespaces.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), m => m.Contains(clone, StringComparison.Ordinal) || m.Contains(netns, StringComparison.Ordinal));
    }

    // A base port whose next 16 are free (the demo takes base .. base+15).
    private static int FreeBase()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var start = Random.Shared.Next(20000, 40000);
            if (Enumerable.Range(start, 16).All(IsFree))
            {
                return start;
            }
        }

        throw new InvalidOperationException("no 16 free ports in a row");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            l.Start();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
