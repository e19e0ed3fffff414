using System.CommandLine;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl forget NODE [--force] [--reason TEXT]</summary>
internal static class ForgetCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var name = new Argument<string>("node") { Description = "The decommissioned node's name" };
        name.CompletionSources.Add(ctx => g.NodeNames(ctx.ParseResult).Select(n => new System.CommandLine.Completions.CompletionItem(n)));
        var force = new Option<bool>("--force") { Description = "Forget it even though it still reports (it comes back at its next report)" };
        var reason = new Option<string?>("--reason") { Description = "Why, for the audit log (e.g. the decommissioning task)" };
        var cmd = new Command("forget", "Forget a decommissioned node: its current state goes from every coordinator instance (admins only, audited; "
            + "refused while the node still reports, unless --force; its history stays until retention)") { name, force, reason, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var response = await c.Admin.ForgetNodeAsync(new ForgetNodeRequest
            {
                Name = pr.GetValue(name)!,
                Force = pr.GetValue(force),
                Reason = pr.GetValue(reason) ?? string.Empty,
            }, deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            var n = response.Forgotten;
            AgentCtlOptions.Print(format is OutputFormat.Table or OutputFormat.Wide
                ? $"node {Output.Escape(n.Name)} forgotten (it was {n.State.Name()})\n"
                : Render.Message(response, format));
        }));
        return cmd;
    }
}
