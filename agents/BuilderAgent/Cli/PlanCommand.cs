using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>`plan IMAGE...`: what a build would make, in order, and what it would skip as unchanged; builds nothing.</summary>
internal static class PlanCommand
{
    public static Command Create(BuilderCli.Flags f)
    {
        var planImages = new Argument<string[]>("image") { Arity = ArgumentArity.OneOrMore };
        var plan = new Command("plan", "Print what a build would make, in order, and what it would skip as unchanged; builds nothing") { planImages, f.Single, f.Repo, f.Registry, f.Prefix, f.Tag, f.Force, f.NoCache, f.DockerHost, f.Output };
        plan.SetAction((pr, ct) => BuilderCli.Guard(async () =>
        {
            var session = BuilderCli.Session(pr, f);
            var (graph, naming) = (session.Graph, session.Naming);
            var order = session.Select(pr.GetValue(planImages)!, pr.GetValue(f.Single));
            IReadOnlyList<PlannedImage>? planned = null;
            string? dockerProblem = null;
            try
            {
                using var docker = BuilderCli.Docker(pr.GetValue(f.DockerHost)!);
                planned = await new BuildRunner(docker, graph, BuilderCli.Settings(pr, f, naming), new ConsoleBuildLog()).PlanAsync(order, ct);
            }
            catch (DockerOperationException ex)
            {
                dockerProblem = ex.Message;
            }

            var rows = order.Select((p, i) => (
                Order: i + 1, Path: p, Name: naming.FullName(p), Parent: graph[p].ParentPath ?? graph[p].From,
                Unchanged: planned?[i].Unchanged, Problem: planned?[i].Problem)).ToList();
            if (Output.Parse(pr.GetValue(f.Output)) == OutputFormat.Json)
            {
                var arr = new JsonArray();
                foreach (var r in rows)
                {
                    arr.Add((JsonNode)new JsonObject { ["order"] = r.Order, ["image"] = r.Path, ["name"] = r.Name, ["parent"] = r.Parent, ["skip"] = r.Unchanged, ["problem"] = r.Problem });
                }

                Console.Out.Write(Output.Json(new JsonObject { ["images"] = arr, ["docker"] = dockerProblem ?? "ok" }));
            }
            else
            {
                Console.Out.Write(Output.Table(["#", "IMAGE", "PARENT", "ACTION", "NAME"],
                    rows.Select(r => (IReadOnlyList<string>)[r.Order.ToString(CultureInfo.InvariantCulture), r.Path, r.Parent,
                        r.Unchanged switch { true => "skip (unchanged)", false => "build", null => "build?" }, r.Name]), width: Output.TerminalWidth()));
                foreach (var r in rows.Where(r => r.Problem is not null))
                {
                    Console.Error.WriteLine($"warning: {r.Path} will not build: {r.Problem}");
                }

                if (dockerProblem is not null)
                {
                    Console.Error.WriteLine($"note: cannot tell which images are unchanged: {dockerProblem}");
                }
            }

            return 0;
        }));
        return plan;
    }
}
