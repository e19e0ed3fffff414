using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// A watch cut off and started again with the last version it saw gets the changes it missed, each once, and no
/// snapshot; a version the instance cannot resume from gets a snapshot that says why (issue 28).
/// </summary>
public sealed class WatchResumeTests
{
    private static ReportRequest Report(string node, CheckState state) => new()
    {
        Node = node,
        Agent = AgentKind.Node,
        AgentVersion = "0.1.0",
        SentAt = Timestamp.FromDateTime(DateTime.UtcNow),
        Checks = { new CheckResult { Name = "kubelet.unit", State = state, Message = state.ToString() } },
    };

    private static async Task<WatchEvent> NextAsync(IAsyncStreamReader<WatchEvent> stream)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.True(await stream.MoveNext(cts.Token), "the watch ended");
        return stream.Current;
    }

    [Fact]
    public async Task AWatchResumedFromItsLastVersion_GetsTheMissedChangesOnce_WithoutASnapshot()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var admin = h.AdminClient(CoordinatorHarness.Viewer);
        string last;
        using (var first = admin.Watch(new WatchRequest()))
        {
            var snapshot = await NextAsync(first.ResponseStream);
            Assert.NotNull(snapshot.Snapshot);
            Assert.Equal(string.Empty, snapshot.ResyncReason);
            await h.AgentClient("a.example").ReportAsync(Report("a.example", CheckState.Ok));
            var a = await NextAsync(first.ResponseStream);
            Assert.Equal("a.example", a.Node.Name);
            last = a.Version;
        }

        // Missed while no watch ran: b appears, a turns failing.
        await h.AgentClient("b.example").ReportAsync(Report("b.example", CheckState.Ok));
        await h.AgentClient("a.example").ReportAsync(Report("a.example", CheckState.Failing));

        using var again = admin.Watch(new WatchRequest { ResumeFrom = last });
        var b = await NextAsync(again.ResponseStream);
        var aFailing = await NextAsync(again.ResponseStream);
        Assert.Equal(("b.example", "a.example", NodeState.Failing), (b.Node?.Name, aFailing.Node?.Name, aFailing.Node!.State));
        await h.AgentClient("c.example").ReportAsync(Report("c.example", CheckState.Ok));
        var c = await NextAsync(again.ResponseStream); // the live change right after the missed ones: nothing twice between
        Assert.Equal("c.example", c.Node?.Name);

        // A version this instance never gave: a snapshot first, saying why.
        using var foreign = admin.Watch(new WatchRequest { ResumeFrom = "0123456789ab:7" });
        var fresh = await NextAsync(foreign.ResponseStream);
        Assert.NotNull(fresh.Snapshot);
        Assert.Equal(3, fresh.Snapshot.Nodes.Count);
        Assert.StartsWith("the version is not one of this coordinator instance", fresh.ResyncReason, StringComparison.Ordinal);
        Assert.NotEqual(string.Empty, fresh.Version);
    }

    [Fact]
    public async Task ASnapshotInChunks_ComesAsContinuedMessages_TheVersionOnTheLast_AndAgentctlPrintsItWhole()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        for (var i = 0; i < 25; i++)
        {
            await h.AgentClient($"n{i:00}.example").ReportAsync(Report($"n{i:00}.example", CheckState.Ok));
        }

        var admin = h.AdminClient(CoordinatorHarness.Viewer);
        using (var watch = admin.Watch(new WatchRequest { SnapshotChunk = 10 }))
        {
            var parts = new List<WatchEvent> { await NextAsync(watch.ResponseStream), await NextAsync(watch.ResponseStream), await NextAsync(watch.ResponseStream) };
            Assert.All(parts, p => Assert.NotNull(p.Snapshot));
            Assert.Equal([10, 10, 5], parts.Select(p => p.Snapshot.Nodes.Count));
            Assert.Equal([true, true, false], parts.Select(p => p.Snapshot.Continued));
            Assert.Equal(Enumerable.Range(0, 25).Select(i => $"n{i:00}.example"), parts.SelectMany(p => p.Snapshot.Nodes).Select(n => n.Name));
            Assert.Equal([true, true, false], parts.Select(p => p.Version.Length == 0)); // only the whole snapshot can be resumed from
            Assert.Equal(parts[0].At, parts[2].At);

            await h.AgentClient("n03.example").ReportAsync(Report("n03.example", CheckState.Failing));
            var live = await NextAsync(watch.ResponseStream); // then the live changes, as before
            Assert.Equal(("n03.example", NodeState.Failing), (live.Node?.Name, live.Node!.State));
        }

        // Out of range: refused before anything is sent.
        foreach (var bad in new[] { -1, Api.AdminApi.MaxSnapshotChunk + 1 })
        {
            using var refused = admin.Watch(new WatchRequest { SnapshotChunk = bad });
            var ex = await Assert.ThrowsAsync<RpcException>(() => NextAsync(refused.ResponseStream));
            Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
            Assert.Contains("snapshot_chunk: must be between 0 (one message) and 10000 nodes", ex.Status.Detail, StringComparison.Ordinal);
        }

        // agentctl asks in chunks of 2 and prints one snapshot of all 25, then the live change.
        await using var agentctl = BackgroundProcess.StartTool("agentctl", [.. h.AgentCtlArgs(CoordinatorHarness.Viewer), "watch", "-o", "json", "--chunk-size", "2"],
            new Dictionary<string, string> { ["NO_COLOR"] = "1" });
        Assert.True(await agentctl.WaitForOutputAsync("\"snapshot\"", TimeSpan.FromSeconds(30)), agentctl.Output);
        await h.AgentClient("n04.example").ReportAsync(Report("n04.example", CheckState.Failing));
        Assert.True(await agentctl.WaitForOutputAsync("n04.example\",\"state\":\"failing", TimeSpan.FromSeconds(30)), agentctl.Output);
        var lines = agentctl.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{')).ToList();
        var snapshot = System.Text.Json.Nodes.JsonNode.Parse(lines[0])!["snapshot"]!;
        Assert.Equal(25, snapshot["nodes"]!.AsArray().Count);
        Assert.Single(lines, l => l.Contains("\"snapshot\"", StringComparison.Ordinal));
    }
}
