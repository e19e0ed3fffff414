using System.CommandLine;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>
/// agentctl promote IMAGE... | --all-verified: asks the builder to point latest at each image's verified testing
/// digest (the manifest copied in the registry: same digest, nothing rebuilt). Admins only, audited (request-promote);
/// it runs as a build record (agentctl builds, build-log), each image "promoted" or "refused" with why.
/// </summary>
internal static class PromoteCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.ZeroOrMore };
        var allVerified = new Option<bool>("--all-verified") { Description = "Every image whose last verify passed" };
        var builder = new Option<string?>("--builder") { Description = "Builder host (default: any connected builder)" };
        var cmd = new Command("promote", "Point latest at exactly the verified testing digest of images (admins only; latest comes only from this)") { images, allVerified, builder, output };
        cmd.Validators.Add(r =>
        {
            if ((r.GetValue(images)?.Length > 0) == r.GetValue(allVerified))
            {
                r.AddError("promote: name images or give --all-verified (not both)");
            }
        });
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var spec = new BuildRequest { Promote = true, AllVerified = pr.GetValue(allVerified) };
            spec.Images.AddRange(pr.GetValue(images)!);
            var build = await c.Admin.RequestBuildAsync(new RequestBuildRequest { Build = spec, Builder = pr.GetValue(builder) ?? string.Empty },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(Render.Queued("promotion", build, format));
        }));
        return cmd;
    }
}
