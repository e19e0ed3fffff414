using System.CommandLine;
using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl ack FINDING --for 2h --reason TEXT | --remove</summary>
internal static class AckCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var id = new Argument<string>("finding") { Description = "The finding's ID (the ID column of agentctl findings)" };
        var duration = new Option<string?>("--for") { Description = "How long, e.g. 30m, 2h, 3d (at most 30d)" };
        var reason = new Option<string?>("--reason") { Description = "Why it may be left alone (required; shown with --all and in the audit log)" };
        var remove = new Option<bool>("--remove") { Description = "End the acknowledgement now: the finding shows and alerts again" };
        var cmd = new Command("ack", "Acknowledge a finding: hidden from agentctl findings and from its alert until --for ends, "
            + "or until it resolves or its severity rises (admins only, audited); agentctl findings --all shows it with who and why")
        {
            id, duration, reason, remove, output,
        };
        cmd.Validators.Add(r =>
        {
            if (r.GetValue(remove))
            {
                if (r.GetValue(duration) is not null)
                {
                    r.AddError("--for: not with --remove");
                }

                return;
            }

            if (r.GetValue(duration) is not { } text)
            {
                r.AddError("--for: required, e.g. --for 2h (or --remove)");
            }
            else if (Durations.Parse(text) is not { } d || d <= TimeSpan.Zero)
            {
                r.AddError($"--for: \"{Output.Escape(text)}\" is not a duration such as 30m, 2h or 3d");
            }
            else if (d > TimeSpan.FromDays(30))
            {
                r.AddError("--for: at most 30d");
            }

            if (string.IsNullOrWhiteSpace(r.GetValue(reason)))
            {
                r.AddError("--reason: required (say why this finding may be left alone)");
            }
        });
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var request = new AcknowledgeRequest { Id = pr.GetValue(id)!.Trim(), Reason = pr.GetValue(reason) ?? string.Empty, Remove = pr.GetValue(remove) };
            if (!request.Remove)
            {
                request.Duration = Duration.FromTimeSpan(Durations.Parse(pr.GetValue(duration))!.Value);
            }

            var f = await c.Admin.AcknowledgeAsync(request, deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(format is OutputFormat.Table or OutputFormat.Wide
                ? request.Remove
                    ? $"finding {f.Id} ({Output.Escape(f.Kind)} {Output.Escape(f.Subject)} on {Output.Escape(f.Node)}) shows and alerts again\n"
                    : $"finding {f.Id} ({Output.Escape(f.Kind)} {Output.Escape(f.Subject)} on {Output.Escape(f.Node)}) acknowledged until {f.Acknowledged.Until.ToDateTimeOffset():yyyy-MM-dd HH:mm}Z\n"
                : Render.Message(f, format));
        }));
        return cmd;
    }
}
