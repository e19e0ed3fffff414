using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>`rebuild-all`: rebuild_all.sh — per series root, clean, build its lineage with --tag latest --no-cache --push, clean.</summary>
internal static class RebuildAllCommand
{
    public static Command Create(BuilderCli.Flags f)
    {
        var series = new Option<string?>("--series") { Description = "Comma-separated series roots (default: every root)" };
        var rebuildAll = new Command("rebuild-all", "rebuild_all.sh: per series root, clean, build its lineage with --tag latest --no-cache --push, clean") { series, f.Repo, f.Registry, f.Prefix, f.Tag, f.Jobs, f.Pull, f.PushSuccessful, f.DockerHost };
        rebuildAll.SetAction((pr, ct) => BuilderCli.Guard(async () =>
        {
            var tag = pr.GetResult(f.Tag) is { Implicit: false } ? pr.GetValue(f.Tag)! : "latest";
            var session = BuildSession.Open(BuilderCli.Repository(pr, f), BuilderCli.Naming(pr, f, tag));
            var (graph, naming) = (session.Graph, session.Naming);
            var roots = pr.GetValue(series) is { Length: > 0 } s
                ? s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(BuildSession.Normalize).ToList()
                : graph.Roots.Order(StringComparer.Ordinal).ToList();
            foreach (var r in roots)
            {
                if (graph.Images.All(i => i.Path != r) || graph[r].ParentPath is not null)
                {
                    throw new RepositoryException($"--series: \"{r}\" is not a series root (roots: {string.Join(", ", graph.Roots)})");
                }
            }

            var settings = BuilderCli.Settings(pr, f, naming) with { Push = true, NoCache = true, Force = true };
            var exit = 0;
            using var docker = BuilderCli.Docker(pr.GetValue(f.DockerHost)!);
            foreach (var r in roots)
            {
                Console.Out.WriteLine($"==> series {r}");
                exit = Math.Max(exit, await CleanCommand.RunAsync(docker, ct));
                exit = Math.Max(exit, await BuilderCli.RunBuildAsync(session, graph.Lineage(r), settings, pr.GetValue(f.DockerHost)!, ct));
                exit = Math.Max(exit, await CleanCommand.RunAsync(docker, ct));
            }

            return exit;
        }));
        return rebuildAll;
    }
}
