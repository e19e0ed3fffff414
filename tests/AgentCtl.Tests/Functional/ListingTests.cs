using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.AgentCtl.Tests;

/// <summary>
/// agentctl's listings against a real coordinator: filters, sorting, the tables' words in JSON and YAML, a line
/// instead of a bare header when nothing matches, and tables sized to a real terminal (tmux).
/// </summary>
public sealed class ListingTests : IAsyncLifetime
{
    private const string Worker1 = "tools-k8s-worker-1.example";
    private const string Worker2 = "tools-k8s-worker-2.example";
    private const string LongMessage = "no KUBE-SERVICES rule sends 172.30.0.41:53/udp to its endpoints; kube-proxy has not synced this Service since the endpoints changed, check its log for errors";
    private CoordinatorHarness _h = null!;

    public async Task InitializeAsync()
    {
        _h = await CoordinatorHarness.StartAsync();
        var r1 = new ReportRequest { Node = Worker1, Agent = AgentKind.Node, AgentVersion = "0.1.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r1.Checks.Add(new CheckResult { Name = "kube-proxy.iptables", State = CheckState.Failing, Message = "1 missing-rule" });
        r1.Findings.Add(new Finding { Kind = "missing-rule", Subject = "kube-system/kube-dns:dns " + new string('x', 120), Message = LongMessage, Severity = Severity.Error, Check = "kube-proxy.iptables" });
        r1.Findings.Add(new Finding { Kind = "foreign-image", Subject = "tool-a/web", Message = "image evil.example.org/miner:latest", Severity = Severity.Warning, Check = "tenant.policy" });
        await _h.AgentClient(Worker1).ReportAsync(r1);
        var r2 = new ReportRequest { Node = Worker2, Agent = AgentKind.Node, AgentVersion = "0.1.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r2.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Warning, Message = "restarted 3 times" });
        await _h.AgentClient(Worker2).ReportAsync(r2);
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task JsonAndYaml_UseTheTablesWords()
    {
        var json = JsonNode.Parse((await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes", "-o", "json")).Stdout)!;
        var states = json["nodes"]!.AsArray().ToDictionary(n => (string)n!["name"]!, n => (string?)n!["state"]);
        Assert.Equal("failing", states[Worker1]);
        Assert.Equal("warning", states[Worker2]);
        Assert.All(json["nodes"]!.AsArray(), n => Assert.Equal("node-agent", (string?)n!["agents"]![0]!["kind"]));

        var findings = JsonNode.Parse((await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "-o", "json")).Stdout)!["findings"]!.AsArray();
        Assert.Contains(findings, f => (string?)f!["severity"] == "error" && (string?)f["kind"] == "missing-rule");
        var yaml = (await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "node", Worker1, "-o", "yaml")).Stdout;
        Assert.Contains("state: failing", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("NODE_STATE_", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("CHECK_STATE_", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Filters_Sorting_AndAnEmptyResult()
    {
        var both = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes", "--state", "failing,warning", "--sort-by", "state");
        Assert.True(both.ExitCode == 0, both.ToString());
        var rows = both.Stdout.Trim().Split('\n').Skip(1).Select(l => l.Split(' ')[0]).ToList();
        Assert.Equal([Worker1, Worker2], rows); // failing before warning

        var errors = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--severity", "error");
        Assert.Contains("missing-rule", errors.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("foreign-image", errors.Stdout, StringComparison.Ordinal);
        var byCheck = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--check", "tenant.policy", "--kind", "foreign-image,missing-rule");
        Assert.Contains("foreign-image", byCheck.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("missing-rule", byCheck.Stdout, StringComparison.Ordinal);

        var none = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes", "--state", "stale");
        Assert.True(none.ExitCode == 0, none.ToString());
        Assert.Equal(string.Empty, none.Stdout);
        Assert.Equal("No nodes found.", none.Stderr.Trim());

        var bad = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "findings", "--severity", "fatal");
        Assert.Equal(2, bad.ExitCode); // bad usage
        Assert.Equal("agentctl: --severity: unknown value \"fatal\" (info, warning, error)", bad.Stderr.Trim());
    }

    /// <summary>
    /// agentctl reads the list in pages (--chunk-size, 500 by default, as kubectl): with pages of one node it still
    /// lists every node once, in order, and filters as before; the coordinator refuses a token it did not make.
    /// </summary>
    [Fact]
    public async Task TheNodeList_ReadInPages_IsWhole()
    {
        var whole = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes", "--chunk-size", "10000", "-o", "json");
        Assert.True(whole.ExitCode == 0, whole.ToString());
        var paged = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes", "--chunk-size", "1", "-o", "json");
        Assert.True(paged.ExitCode == 0, paged.ToString());
        var names = JsonNode.Parse(paged.Stdout)!["nodes"]!.AsArray().Select(n => (string)n!["name"]!).ToList();
        Assert.Equal(JsonNode.Parse(whole.Stdout)!["nodes"]!.AsArray().Select(n => (string)n!["name"]!), names);
        Assert.Equal([Worker1, Worker2], names.Where(n => n.StartsWith("tools-k8s-worker-", StringComparison.Ordinal)));
        var failing = await _h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes", "--chunk-size", "1", "--state", "failing");
        Assert.Equal([Worker1], failing.Stdout.Trim().Split('\n').Skip(1).Select(l => l.Split(' ')[0]));

        var page = await _h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest { Limit = 1 });
        Assert.Single(page.Nodes);
        Assert.NotEqual(string.Empty, page.ContinueToken);
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
            await _h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest { Limit = 1, ContinueToken = "aGVsbG8" }));
        Assert.Equal((Grpc.Core.StatusCode.InvalidArgument, "not a continue token of this coordinator"), (refused.StatusCode, refused.Status.Detail));
        var negative = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
            await _h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest { Limit = -1 }));
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, negative.StatusCode); // not every node, as the fast path gave
    }

    [Fact]
    public async Task InATerminalOf100Columns_TheMessageFillsTheWidth_AndWideShowsItWhole()
    {
        Peer.Require("tmux", "tmux");
        var (cert, key) = _h.Issue(CoordinatorHarness.Viewer);
        var agentctl = Run.ToolPath("agentctl");
        var common = $"--server {_h.Address} --cert {cert} --key {key} --ca {_h.CaPath}";
        var table = await InTmuxAsync($"dotnet {agentctl} findings --kind missing-rule {common}");
        var lines = table.Split('\n').Where(l => l.Length > 0).ToList();
        Assert.True(lines.Count >= 2 && lines.Any(l => l.StartsWith(Worker1, StringComparison.Ordinal)), table);
        Assert.All(lines, l => Assert.True(l.Length <= 100, $"{l.Length}: {l}"));
        var row = lines.Single(l => l.StartsWith(Worker1, StringComparison.Ordinal));
        var shown = row[lines[0].IndexOf("MESSAGE", StringComparison.Ordinal)..];
        Assert.True(shown.Length >= 30, $"only \"{shown}\" of the message");
        Assert.EndsWith("…", shown, StringComparison.Ordinal);
        Assert.StartsWith(LongMessage[..(shown.Length - 1)], shown, StringComparison.Ordinal);

        var wide = await InTmuxAsync($"dotnet {agentctl} findings --kind missing-rule -o wide {common}", joinWrapped: true);
        Assert.Contains(LongMessage, wide, StringComparison.Ordinal);
        Assert.Contains("kube-proxy.iptables", wide, StringComparison.Ordinal); // wide's CHECK column
    }

    /// <summary>Runs <paramref name="command"/> in a detached tmux session of 100×50 and returns the screen once it has exited.</summary>
    private static async Task<string> InTmuxAsync(string command, bool joinWrapped = false)
    {
        using var dir = new TempDir();
        var socket = dir["tmux.sock"];
        var done = dir["done"];
        var start = await Run.ProcessAsync("tmux", ["-S", socket, "new-session", "-d", "-x", "100", "-y", "50", "-s", "t",
            $"env NO_COLOR=1 {command}; touch {done}; sleep 60"], TimeSpan.FromSeconds(10));
        Assert.True(start.ExitCode == 0, start.ToString());
        try
        {
            Assert.True(await Peer.EventuallyAsync(() => File.Exists(done), TimeSpan.FromSeconds(60)), "the command did not finish in tmux");
            var capture = await Run.ProcessAsync("tmux", ["-S", socket, "capture-pane", "-p", .. joinWrapped ? ["-J"] : Array.Empty<string>(), "-t", "t"], TimeSpan.FromSeconds(10));
            return capture.Stdout;
        }
        finally
        {
            await Run.ProcessAsync("tmux", ["-S", socket, "kill-server"], TimeSpan.FromSeconds(10));
        }
    }
}
