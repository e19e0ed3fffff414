using System.CommandLine;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl nodes</summary>
internal static class NodesCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var state = AgentCtlOptions.Words("--state", "Only nodes in these states: ok, warning, failing, stale, missing");
        var kind = AgentCtlOptions.Words("--kind", "Only nodes running one of these agents: node-agent, builder-agent, log-shipper");
        var sortBy = AgentCtlOptions.SortBy("name", "state", "last-report", "findings");
        var chunk = AgentCtlOptions.ChunkSize("Read the list in pages of this many nodes (as kubectl's --chunk-size), 1 to 10000");
        var cmd = new Command("nodes", "List nodes and their state") { output, state, kind, sortBy, chunk };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var request = new ListNodesRequest { Limit = pr.GetValue(chunk) };
            request.States.AddRange(AgentCtlOptions.Parse(pr, state, ContractNames.ParseNodeState, "ok, warning, failing, stale, missing"));
            var kinds = AgentCtlOptions.Parse(pr, kind, ContractNames.ParseAgentKind, "node-agent, builder-agent, log-shipper");
            var all = new List<NodeSummary>();
            var tokens = new HashSet<string>(StringComparer.Ordinal);
            do
            {
                // Each page with its own deadline: a long list is many short calls, not one the deadline cuts.
                var response = await c.Admin.ListNodesAsync(request, deadline: c.Deadline(), cancellationToken: ct);
                all.AddRange(response.Nodes);
                request.ContinueToken = response.ContinueToken;
                if (request.ContinueToken.Length > 0 && (!tokens.Add(request.ContinueToken) || response.Nodes.Count == 0))
                {
                    throw new CliException("the coordinator's pages of nodes do not move on (the same continue token twice, or an empty page with one)");
                }
            }
            while (request.ContinueToken.Length > 0);
            var nodes = all.Where(n => kinds.Count == 0 || n.Agents.Any(a => kinds.Contains(a.Kind))).ToList();
            nodes = pr.GetValue(sortBy) switch
            {
                "state" => [.. nodes.OrderByDescending(n => Rank(n.State)).ThenBy(n => n.Name, StringComparer.Ordinal)],
                "last-report" => [.. nodes.OrderByDescending(n => n.LastReport?.ToDateTimeOffset() ?? DateTimeOffset.MinValue).ThenBy(n => n.Name, StringComparer.Ordinal)],
                "findings" => [.. nodes.OrderByDescending(n => n.Findings).ThenBy(n => n.Name, StringComparer.Ordinal)],
                "name" => [.. nodes.OrderBy(n => n.Name, StringComparer.Ordinal)],
                _ => nodes,
            };
            var filtered = new ListNodesResponse();
            filtered.Nodes.AddRange(nodes);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.PrintListing(format, nodes.Count, "nodes", () => Render.Nodes(nodes, DateTimeOffset.UtcNow, format), () => Render.Message(filtered, format));
        }));
        return cmd;
    }

    /// <summary>Worst first: missing, stale, failing, warning, ok.</summary>
    internal static int Rank(NodeState s) => s switch
    {
        NodeState.Missing => 5,
        NodeState.Stale => 4,
        NodeState.Failing => 3,
        NodeState.Warning => 2,
        NodeState.Ok => 1,
        _ => 0,
    };
}
