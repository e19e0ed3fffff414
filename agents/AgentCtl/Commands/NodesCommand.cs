using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl nodes</summary>
internal static class NodesCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var state = new Option<string[]>("--state") { Description = "Only nodes in these states (ok, warning, failing, stale, missing)", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("nodes", "List nodes and their state") { output, state };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var request = new ListNodesRequest();
            foreach (var s in pr.GetValue(state) ?? [])
            {
                request.States.Add(ContractNames.ParseNodeState(s) ?? throw new CliException($"--state: unknown state \"{s}\" (ok, warning, failing, stale, missing)"));
            }

            var response = await c.Admin.ListNodesAsync(request, deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(format == OutputFormat.Table ? Render.Nodes(response.Nodes, DateTimeOffset.UtcNow) : Render.Message(response, format));
        }));
        return cmd;
    }
}
