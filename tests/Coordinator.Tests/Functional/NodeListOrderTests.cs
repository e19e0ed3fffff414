using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests.Functional;

/// <summary>
/// The node list keeps its name order without sorting per call (it is sorted again only when a node comes or goes):
/// a node added, and one forgotten, between two calls and between two pages are seen at once, in order.
/// </summary>
public sealed class NodeListOrderTests : IAsyncLifetime
{
    private CoordinatorHarness _h = null!;

    public async Task InitializeAsync() => _h = await CoordinatorHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task ANodeAddedOrForgotten_BetweenCallsAndPages_IsSeenInOrder()
    {
        var viewer = _h.AdminClient(CoordinatorHarness.Viewer);
        await ReportAsync("b-worker.example");
        await ReportAsync("d-worker.example");
        Assert.Equal(["b-worker.example", "d-worker.example"], await NamesAsync(new ListNodesRequest()));

        var first = await viewer.ListNodesAsync(new ListNodesRequest { Limit = 1 });
        Assert.Equal("b-worker.example", Assert.Single(first.Nodes).Name);

        // Between the pages, each change seen by the next call on its own: one comes before the token, one goes...
        await ReportAsync("a-worker.example");
        Assert.Equal(["a-worker.example", "b-worker.example", "d-worker.example"], await NamesAsync(new ListNodesRequest()));
        await ForgetAsync("d-worker.example");
        Assert.Equal(["a-worker.example", "b-worker.example"], await NamesAsync(new ListNodesRequest()));
        await ReportAsync("b-worker.example"); // a report of a node listed before: the order holds
        Assert.Equal(["a-worker.example", "b-worker.example"], await NamesAsync(new ListNodesRequest()));

        // ...and one comes after it: the next page is that one alone.
        await ReportAsync("c-worker.example");
        var rest = await viewer.ListNodesAsync(new ListNodesRequest { Limit = 10, ContinueToken = first.ContinueToken });
        Assert.Equal(["c-worker.example"], rest.Nodes.Select(n => n.Name));
        Assert.Equal(string.Empty, rest.ContinueToken);
        Assert.Equal(["a-worker.example", "b-worker.example"], await NamesAsync(new ListNodesRequest { Limit = 2 }));

        // One comes and one goes between two calls: as many nodes as before, another list.
        await ForgetAsync("a-worker.example");
        await ReportAsync("0-worker.example"); // comes first in ordinal order
        Assert.Equal(["0-worker.example", "b-worker.example", "c-worker.example"], await NamesAsync(new ListNodesRequest()));
    }

    private async Task ForgetAsync(string node)
    {
        var forgotten = await _h.AdminClient(CoordinatorHarness.Admin).ForgetNodeAsync(new ForgetNodeRequest { Name = node, Force = true, Reason = "test" });
        Assert.Equal(node, forgotten.Forgotten.Name);
    }

    private async Task<List<string>> NamesAsync(ListNodesRequest request) =>
        [.. (await _h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(request)).Nodes.Select(n => n.Name)];

    private async Task ReportAsync(string node)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = "active (running)" });
        await _h.AgentClient(node).ReportAsync(r);
    }
}
