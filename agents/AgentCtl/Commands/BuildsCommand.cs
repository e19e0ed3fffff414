using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl builds</summary>
internal static class BuildsCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first", DefaultValueFactory = _ => 50 };
        var cmd = new Command("builds", "List image builds requested through the coordinator") { limit, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var response = await c.Admin.ListBuildsAsync(new ListBuildsRequest { Limit = pr.GetValue(limit) }, deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(format == OutputFormat.Table ? Render.Builds(response.Builds, DateTimeOffset.UtcNow) : Render.Message(response, format));
        }));
        return cmd;
    }
}
