using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl build IMAGE...</summary>
internal static class BuildCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.OneOrMore };
        var tag = new Option<string>("--tag", "-t") { Description = "testing (default); latest is refused: it comes only from promotion of a verified testing digest", DefaultValueFactory = _ => "testing" };
        var push = new Option<bool>("--push") { Description = "Push the images after building" };
        var noCache = new Option<bool>("--no-cache") { Description = "Build without Docker's layer cache" };
        var single = new Option<bool>("--single", "-s") { Description = "Build only the named images, not their lineage" };
        var force = new Option<bool>("--force") { Description = "Rebuild even when the inputs did not change" };
        var builder = new Option<string?>("--builder") { Description = "Builder host (default: any connected builder)" };
        var reason = Reason();
        var cmd = new Command("build", "Ask the builder-agent to build images (admins only); `build cancel ID` cancels one; `build security` rebuilds for security updates")
            { images, tag, push, noCache, single, force, builder, reason, output };
        cmd.Subcommands.Add(BuildCancelCommand.Create(g));
        cmd.Subcommands.Add(SecurityCommand(g));
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var spec = new BuildRequest
            {
                Tag = pr.GetValue(tag)!,
                Push = pr.GetValue(push),
                NoCache = pr.GetValue(noCache),
                Single = pr.GetValue(single),
                Force = pr.GetValue(force),
                Reason = pr.GetValue(reason) ?? string.Empty,
            };
            spec.Images.AddRange(pr.GetValue(images)!);
            var build = await c.Admin.RequestBuildAsync(new RequestBuildRequest { Build = spec, Builder = pr.GetValue(builder) ?? string.Empty },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(Render.Queued("build", build, format));
        }));
        return cmd;
    }

    private static Option<string?> Reason() => new("--reason") { Description = "Why, recorded with the build (e.g. \"DSA-5834-1 openssl\"; at most 200 characters)" };

    /// <summary>
    /// agentctl build security [IMAGE...] --reason TEXT: every image (or the named images' lineages) rebuilt without the
    /// cache; an image is pushed as testing only when its Debian packages changed or its parent was pushed (issue 27).
    /// </summary>
    private static Command SecurityCommand(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var images = new Argument<string[]>("image") { Description = "Image paths whose lineages are rebuilt (default: every image of the builder's tree)", Arity = ArgumentArity.ZeroOrMore };
        var reason = Reason();
        reason.Required = true;
        var builder = new Option<string?>("--builder") { Description = "Builder host (default: any connected builder)" };
        var cmd = new Command("security", "Rebuild without the cache for security updates; push only images whose packages changed, and their descendants (admins only)")
            { images, reason, builder, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var spec = new BuildRequest { SecurityRebuild = true, Reason = pr.GetValue(reason)! };
            spec.Images.AddRange(pr.GetValue(images)!);
            var build = await c.Admin.RequestBuildAsync(new RequestBuildRequest { Build = spec, Builder = pr.GetValue(builder) ?? string.Empty },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(Render.Queued("security rebuild", build, format));
        }));
        return cmd;
    }
}
