using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

public sealed partial class ReportFieldTests
{
    [Fact]
    public async Task Bad_fields_are_INVALID_ARGUMENT_and_change_nothing_stored_and_only_the_builder_receives_commands()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var agent = h.AgentClient(Node);
        await agent.ReportAsync(Report());
        var before = await h.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = Node });
        foreach (var how in Bad().Select(row => (string)row[0]))
        {
            var ex = await Assert.ThrowsAsync<RpcException>(() => agent.ReportAsync(Broken(how)).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        }

        var after = await h.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = Node });
        Assert.Equal(before.Checks, after.Checks);
        Assert.Equal(before.Findings, after.Findings);

        foreach (var kind in new[] { AgentKind.Node, AgentKind.LogShipper })
        {
            using var call = agent.ReceiveCommands(new ReceiveCommandsRequest { Node = Node, Agent = kind });
            var refused = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
            Assert.Contains("only the builder receives commands", refused.Status.Detail, StringComparison.Ordinal);
        }

        var nodes = await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest());
        Assert.Equal([Node], nodes.Nodes.Select(n => n.Name));
    }
}
