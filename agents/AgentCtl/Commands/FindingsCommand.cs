using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl findings</summary>
internal static class FindingsCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var node = new Option<string?>("--node") { Description = "Only this node" };
        var kind = new Option<string?>("--kind") { Description = "Only this kind (missing-rule, stale-rule, foreign-image, ...)" };
        var limit = new Option<int>("--limit") { Description = "At most this many", DefaultValueFactory = _ => 1000 };
        var cmd = new Command("findings", "List what the audits found") { node, kind, limit, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var response = await c.Admin.ListFindingsAsync(new ListFindingsRequest
            {
                Node = pr.GetValue(node) ?? string.Empty,
                Kind = pr.GetValue(kind) ?? string.Empty,
                Limit = pr.GetValue(limit),
            }, deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(format == OutputFormat.Table ? Render.Findings(response.Findings, DateTimeOffset.UtcNow) : Render.Message(response, format));
        }));
        return cmd;
    }
}
