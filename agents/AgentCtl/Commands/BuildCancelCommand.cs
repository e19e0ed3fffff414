using System.CommandLine;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl build cancel ID [--reason TEXT]</summary>
internal static class BuildCancelCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var id = new Argument<string>("id") { Description = "The build's id (agentctl builds)" };
        var reason = new Option<string?>("--reason") { Description = "Why, for the audit log and the build's record" };
        var cmd = new Command("cancel", "Cancel a build (admins only, audited): a queued one ends cancelled at once; "
            + "one a builder took is asked to stop and ends cancelled when the builder stops it") { id, reason, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var b = await c.Admin.CancelBuildAsync(new CancelBuildRequest { Id = pr.GetValue(id)!.Trim(), Reason = pr.GetValue(reason) ?? string.Empty },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(format is OutputFormat.Table or OutputFormat.Wide
                ? b.State == BuildState.Cancelled
                    ? $"build {b.Id} cancelled\n"
                    : $"build {b.Id} ({b.State.Name()} on {Output.Escape(b.Builder)}): asked to stop; agentctl build-log {b.Id} -f shows when it has\n"
                : Render.Message(b, format));
        }));
        return cmd;
    }
}
