using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl node NAME</summary>
internal static class NodeCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var name = new Argument<string>("name") { Description = "Node name (its certificate's name)" };
        name.CompletionSources.Add(ctx => g.NodeNames(ctx.ParseResult).Select(n => new System.CommandLine.Completions.CompletionItem(n)));
        var cmd = new Command("node", "Show one node: checks, findings, recent events") { name, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var detail = await c.Admin.GetNodeAsync(new GetNodeRequest { Name = pr.GetValue(name)! }, deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(format is OutputFormat.Table or OutputFormat.Wide ? Render.Node(detail, DateTimeOffset.UtcNow, format) : Render.Message(detail, format));
        }));
        return cmd;
    }
}
