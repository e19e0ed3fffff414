using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.AgentCtl.Tests;

/// <summary>
/// `agentctl completion bash` in a real interactive bash (tmux): a subcommand and a node name the coordinator knows
/// complete on TAB. The man page is made from the same command definitions.
/// </summary>
public sealed class CompletionTests
{
    [Fact]
    public async Task BashCompletes_ASubcommand_AndANodeNameFromTheCoordinator()
    {
        Peer.Require("tmux", "tmux");
        await using var h = await CoordinatorHarness.StartAsync();
        using var dir = new TempDir();
        var marker = dir["PWNED"];
        var evil = $"be$(touch {marker})";
        foreach (var node in new[] { "alpha-node.example", "beta-node.example", evil })
        {
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "0.1.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
            r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = "active" });
            // A certificate whose only name is its CN, and that CN a shell command: the identity rule takes it as it is.
            if (node == evil)
            {
                // The coordinator refuses a node name that is no host name, so it never reaches a completion.
                var client = new AgentService.AgentServiceClient(h.Channel(h.IssueWith("evil", pki => pki.Issue("evil.example", nameInSan: false, commonName: evil))));
                var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => client.ReportAsync(r).ResponseAsync);
                Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, refused.StatusCode);
                continue;
            }

            await h.AgentClient(node).ReportAsync(r);
        }

        var bin = dir["bin"];
        Directory.CreateDirectory(bin);
        await File.WriteAllTextAsync(Path.Combine(bin, "agentctl"), $"#!/bin/sh\nexec dotnet {Run.ToolPath("agentctl")} \"$@\"\n");
        File.SetUnixFileMode(Path.Combine(bin, "agentctl"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var script = await Run.ProcessAsync(Path.Combine(bin, "agentctl"), ["completion", "bash"], TimeSpan.FromSeconds(30));
        Assert.True(script.ExitCode == 0, script.ToString());
        await File.WriteAllTextAsync(dir["completion.bash"], script.Stdout);
        var (cert, key) = h.Issue(CoordinatorHarness.Viewer);
        await File.WriteAllTextAsync(dir["bashrc"], $"PATH={bin}:$PATH\nPS1='$ '\nsource {dir["completion.bash"]}\n");

        var socket = dir["tmux.sock"];
        var start = await Run.ProcessAsync("tmux", ["-S", socket, "new-session", "-d", "-x", "250", "-y", "20", "-s", "t", $"bash --rcfile {dir["bashrc"]} -i"], TimeSpan.FromSeconds(10));
        Assert.True(start.ExitCode == 0, start.ToString());
        try
        {
            Assert.True(await Peer.EventuallyAsync(() => Screen(socket).Contains('$'), TimeSpan.FromSeconds(20)), Screen(socket));
            await Keys(socket, "agentctl fin", "Tab");
            Assert.True(await Peer.EventuallyAsync(() => Screen(socket).Contains("$ agentctl findings "), TimeSpan.FromSeconds(30)), Screen(socket));
            await Keys(socket, "C-u");

            await Keys(socket, $"agentctl --server {h.Address} --cert {cert} --key {key} --ca {h.CaPath} node be", "Tab");
            Assert.True(await Peer.EventuallyAsync(() => Screen(socket).Contains("node beta-node.example "), TimeSpan.FromSeconds(30)), Screen(socket));
            Assert.False(File.Exists(marker), "a node's name was run as a command by the completion");
        }
        finally
        {
            await Run.ProcessAsync("tmux", ["-S", socket, "kill-server"], TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>
    /// Whatever the program answers (a coordinator that is not ours could name a node anything), the bash script inserts
    /// candidates as text: a candidate reading $(touch FILE) is never run.
    /// </summary>
    [Fact]
    public async Task TheBashScript_NeverRunsACandidate()
    {
        Peer.Require("tmux", "tmux");
        using var dir = new TempDir();
        var marker = dir["PWNED"];
        var bin = dir["bin"];
        Directory.CreateDirectory(bin);
        var script = await Run.DotnetToolAsync("agentctl", ["completion", "bash"]);
        await File.WriteAllTextAsync(dir["completion.bash"], script.Stdout);
        // A stand-in agentctl whose suggestions are hostile.
        await File.WriteAllTextAsync(Path.Combine(bin, "agentctl"), $"#!/bin/sh\nprintf '%s\\n' 'be$(touch {marker})' 'be`touch {marker}`' 'be*'\n");
        File.SetUnixFileMode(Path.Combine(bin, "agentctl"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await File.WriteAllTextAsync(dir["bashrc"], $"PATH={bin}:$PATH\nPS1='$ '\ncd {dir.Path}\nsource {dir["completion.bash"]}\n");
        var socket = dir["tmux.sock"];
        Assert.Equal(0, (await Run.ProcessAsync("tmux", ["-S", socket, "new-session", "-d", "-x", "200", "-y", "20", "-s", "t", $"bash --rcfile {dir["bashrc"]} -i"], TimeSpan.FromSeconds(10))).ExitCode);
        try
        {
            Assert.True(await Peer.EventuallyAsync(() => Screen(socket).Contains('$'), TimeSpan.FromSeconds(20)), Screen(socket));
            await Keys(socket, "agentctl node be", "Tab", "Tab");
            Assert.True(await Peer.EventuallyAsync(() => Screen(socket).Contains("be$(touch", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), Screen(socket)); // listed as text
            Assert.False(File.Exists(marker), "a candidate was run as a command");
        }
        finally
        {
            await Run.ProcessAsync("tmux", ["-S", socket, "kill-server"], TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task TheManPage_IsRoff_AndNamesEveryCommand()
    {
        var r = await Run.DotnetToolAsync("agentctl", ["man"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith(".TH AGENTCTL 1 ", r.Stdout, StringComparison.Ordinal);
        foreach (var command in new[] { "nodes", "node", "findings", "builds", "build", "images", "build\\-log", "watch", "pki", "completion" })
        {
            Assert.Contains($".SS \"agentctl {command}", r.Stdout, StringComparison.Ordinal);
        }

        Assert.Contains("\\-\\-sort\\-by", r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(".SS \"agentctl man", r.Stdout, StringComparison.Ordinal); // hidden
        Peer.Require("man", "man-db");
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["agentctl.1"], r.Stdout);
        var rendered = await Run.ProcessAsync("man", ["-l", dir["agentctl.1"]], TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["MANPAGER"] = "cat", ["MANWIDTH"] = "100", ["LC_ALL"] = "C" });
        Assert.True(rendered.ExitCode == 0, rendered.ToString());
        Assert.Contains("agentctl findings", rendered.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("warning:", rendered.Stderr, StringComparison.Ordinal);
    }

    private static string Screen(string socket)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("tmux", ["-S", socket, "capture-pane", "-p", "-J", "-t", "t"]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return text;
    }

    private static async Task Keys(string socket, params string[] keys)
    {
        foreach (var k in keys)
        {
            var literal = k is "Tab" or "C-u" or "Enter" ? Array.Empty<string>() : ["-l"];
            var r = await Run.ProcessAsync("tmux", ["-S", socket, "send-keys", "-t", "t", .. literal, k], TimeSpan.FromSeconds(10));
            Assert.True(r.ExitCode == 0, r.ToString());
        }
    }
}
