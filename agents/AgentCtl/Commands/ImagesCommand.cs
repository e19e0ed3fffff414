using System.CommandLine;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl images --package NAME[=VERSION]: the pushed digests whose package inventory holds it (issue 27).</summary>
internal static class ImagesCommand
{
    /// <summary>Said above the table while the coordinator does not know which digests nodes run.</summary>
    public const string NodesUnknown = "Nodes holding these digests: not known (no node-agent has listed its runtime's images yet).";

    /// <summary>The line said when some node-agents have not listed their images: NODES may leave those nodes out.</summary>
    internal static string Unreported(ListImagePackagesResponse r) =>
        $"Not counted in NODES: {(r.NodesUnreported.Count >= 100 ? "at least " : string.Empty)}{r.NodesUnreported.Count} node(s) whose node-agent has not listed its images ({string.Join(", ", r.NodesUnreported.Take(5).Select(Output.Escape))}{(r.NodesUnreported.Count > 5 ? ", ..." : string.Empty)}).";

    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var package = new Option<string>("--package")
        {
            Description = "A Debian package, as NAME or NAME=VERSION, or a language package of a lock file, as ECOSYSTEM:NAME[=VERSION] (npm, gem, composer, pypi): every pushed digest whose inventory holds it",
            Required = true,
        };
        package.Validators.Add(r =>
        {
            if (Parse(r.GetValueOrDefault<string>() ?? string.Empty) is { Problem: { } problem })
            {
                r.AddError("--package: " + problem);
            }
        });
        var limit = new Option<int>("--limit") { Description = "At most this many rows, newest first", DefaultValueFactory = _ => 1000 };
        limit.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 10_000)
            {
                r.AddError("--limit: must be a whole number from 1 to 10000");
            }
        });
        var cmd = new Command("images", "List pushed image digests by the Debian packages they hold (from the builders' inventories); prune old ones") { package, limit, output, PruneCommand(g) };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var (name, version, _) = Parse(pr.GetValue(package)!);
            var response = await c.Admin.ListImagePackagesAsync(new ListImagePackagesRequest { Package = name, Version = version ?? string.Empty, Limit = pr.GetValue(limit) },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            if (format is not (OutputFormat.Json or OutputFormat.Yaml) && response.Matches.Count > 0)
            {
                if (!response.NodesKnown)
                {
                    Console.Out.WriteLine(NodesUnknown);
                }
                else if (response.NodesUnreported.Count > 0)
                {
                    Console.Out.WriteLine(Unreported(response));
                }
            }

            AgentCtlOptions.PrintListing(format, response.Matches.Count, "images holding " + Output.Escape(name + (version is null ? string.Empty : "=" + version)),
                () => Render.ImagePackages(response, DateTimeOffset.UtcNow, format), () => Render.Message(response, format));
            if (response.Truncated && format is not (OutputFormat.Json or OutputFormat.Yaml))
            {
                Console.Error.WriteLine($"agentctl: more than {response.Matches.Count} rows matched; --limit shows more");
            }
        }));
        return cmd;
    }

    /// <summary>
    /// agentctl images prune --keep N [--dry-run] [IMAGE...]: asks a builder to delete old digests of the images'
    /// repositories from the registry (every image of its tree when none is named). Kept: testing, latest, tags the
    /// builder did not make, the N newest history tags, every digest a kept tag names, and every digest a node holds or
    /// uses (the coordinator hands the builder the node-agents' lists, and refuses while one is unknown or stale).
    /// Admins only, audited (request-prune); it runs as a build record whose log says each deletion and why it is safe.
    /// </summary>
    private static Command PruneCommand(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base (default: every image of the builder's tree)", Arity = ArgumentArity.ZeroOrMore };
        var keep = new Option<int>("--keep") { Description = "History tags kept per repository, newest first (1 to 1000)", Required = true };
        keep.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > ImageResults.MaxKeep)
            {
                r.AddError($"--keep: must be a whole number from 1 to {ImageResults.MaxKeep}");
            }
        });
        var keepDays = new Option<double>("--keep-days")
        {
            Description = "History tags of builds younger than this many days (a fraction is fine) are kept too: someone may have pinned one (at most 3650)",
            DefaultValueFactory = _ => 30,
        };
        keepDays.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double>() > ImageResults.MaxKeepDays)
            {
                r.AddError($"--keep-days: must be at most {ImageResults.MaxKeepDays}");
            }
        });
        var dryRun = new Option<bool>("--dry-run") { Description = "List each deletion with why it is safe; delete nothing" };
        var builder = new Option<string?>("--builder") { Description = "Builder host (default: any connected builder)" };
        var cmd = new Command("prune", "Delete old image digests from the registry: never testing, latest, a kept tag's digest, nor one a node holds or uses (admins only)")
            { images, keep, keepDays, dryRun, builder, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var spec = new BuildRequest { Prune = new PruneRequest { Keep = pr.GetValue(keep), KeepDays = pr.GetValue(keepDays), DryRun = pr.GetValue(dryRun) } };
            spec.Images.AddRange(pr.GetValue(images)!);
            var build = await c.Admin.RequestBuildAsync(new RequestBuildRequest { Build = spec, Builder = pr.GetValue(builder) ?? string.Empty },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.Print(Render.Queued(pr.GetValue(dryRun) ? "dry run of prune" : "prune", build, format));
        }));
        return cmd;
    }

    /// <summary>NAME or NAME=VERSION (a Debian package, or a language package's ECOSYSTEM:NAME); the problem in words otherwise.</summary>
    internal static (string Name, string? Version, string? Problem) Parse(string value)
    {
        var eq = value.IndexOf('=', StringComparison.Ordinal);
        var name = eq < 0 ? value : value[..eq];
        var version = eq < 0 ? null : value[(eq + 1)..];
        return (name, version, LanguagePackages.QueryProblem(name, version));
    }
}
