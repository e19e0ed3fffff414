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
}
