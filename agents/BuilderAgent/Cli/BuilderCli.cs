using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>
/// toolforge-builder-agent's command line: build.py's flags (image path, --push, --docker-registry, -t/--tag,
/// --image-prefix, --no-cache, -s/--single) and ours (--jobs, --pull, --force, --repo, --push-successful).
/// Exit codes: 0 all good, 1 something failed to build or push, 2 bad input (repository, template, flags).
/// </summary>
internal static class BuilderCli
{
    public const int ExitFailed = ExitCodes.Failed;
    public const int ExitBadInput = ExitCodes.Usage;

    private sealed class Flags
    {
        public Option<string?> Repo { get; } = new("--repo") { Description = "The image repository (default: the current directory or the nearest parent that holds one)" };
        public Option<string> Registry { get; } = new("--docker-registry") { Description = "Registry the images are named for", DefaultValueFactory = _ => NamingOptions.DefaultRegistry };
        public Option<string> Prefix { get; } = new("--image-prefix") { Description = "Prefix of every image name", DefaultValueFactory = _ => NamingOptions.DefaultPrefix };
        public Option<string> Tag { get; } = new("--tag", "-t") { Description = "testing (default) or latest", DefaultValueFactory = _ => "testing" };
        public Option<bool> Push { get; } = new("--push") { Description = "Push every image after all built" };
        public Option<bool> NoCache { get; } = new("--no-cache") { Description = "Build without Docker's layer cache (always rebuilds)" };
        public Option<bool> Single { get; } = new("--single", "-s") { Description = "Build only the named images, not their ancestors and descendants" };
        public Option<int> Jobs { get; } = new("--jobs", "-j") { Description = "Independent images built at once", DefaultValueFactory = _ => 2 };
        public Option<bool> Pull { get; } = new("--pull") { Description = "Pull a newer external base image" };
        public Option<bool> Force { get; } = new("--force") { Description = "Rebuild images whose inputs did not change" };
        public Option<bool> PushSuccessful { get; } = new("--push-successful") { Description = "With --push: push what built even when other images failed" };
        public Option<string> DockerHost { get; } = new("--docker-host") { Description = "Docker Engine endpoint", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("DOCKER_HOST") ?? "unix:///var/run/docker.sock" };
        public Option<string> Output { get; } = new("--output", "-o") { Description = "table or json", DefaultValueFactory = _ => "table" };
    }

    /// <summary>The one-shot commands: build, rebuild-all, plan, render, graph, clean.</summary>
    public static IEnumerable<Command> Commands()
    {
        var f = new Flags();
        var root = new List<Command>();

        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.ZeroOrMore };
        var git = new GitBuildCommand.Flags();
        var build = new Command("build", "Build images with their ancestors and descendants, in order; or (--from-git) what the new commits changed") { images, f.Repo, f.Registry, f.Prefix, f.Tag, f.Push, f.NoCache, f.Single, f.Jobs, f.Pull, f.Force, f.PushSuccessful, f.DockerHost };
        foreach (var option in git.All)
        {
            build.Options.Add(option);
        }

        build.SetAction((pr, ct) => Guard(async () =>
        {
            if (GitBuildCommand.UsageProblem(pr, git, pr.GetValue(images)!.Length) is { } usage)
            {
                throw new RepositoryException(usage);
            }

            if (pr.GetValue(git.FromGit))
            {
                return await GitBuildCommand.RunAsync(pr, git, Repository(pr, f), Naming(pr, f), naming => Settings(pr, f, naming),
                    (session, order, settings, t) => RunBuildAsync(session, order, settings, pr.GetValue(f.DockerHost)!, t), ct);
            }

            var session = Session(pr, f);
            var order = session.Select(pr.GetValue(images)!, pr.GetValue(f.Single));
            return await RunBuildAsync(session, order, Settings(pr, f, session.Naming), pr.GetValue(f.DockerHost)!, ct);
        }));
        root.Add(build);

        var series = new Option<string?>("--series") { Description = "Comma-separated series roots (default: every root)" };
        var rebuildAll = new Command("rebuild-all", "rebuild_all.sh: per series root, clean, build its lineage with --tag latest --no-cache --push, clean") { series, f.Repo, f.Registry, f.Prefix, f.Tag, f.Jobs, f.Pull, f.PushSuccessful, f.DockerHost };
        rebuildAll.SetAction((pr, ct) => Guard(async () =>
        {
            var tag = pr.GetResult(f.Tag) is { Implicit: false } ? pr.GetValue(f.Tag)! : "latest";
            var session = BuildSession.Open(Repository(pr, f), Naming(pr, f, tag));
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

            var settings = Settings(pr, f, naming) with { Push = true, NoCache = true, Force = true };
            var exit = 0;
            using var docker = Docker(pr.GetValue(f.DockerHost)!);
            foreach (var r in roots)
            {
                Console.Out.WriteLine($"==> series {r}");
                exit = Math.Max(exit, await CleanAsync(docker, ct));
                exit = Math.Max(exit, await RunBuildAsync(session, graph.Lineage(r), settings, pr.GetValue(f.DockerHost)!, ct));
                exit = Math.Max(exit, await CleanAsync(docker, ct));
            }

            return exit;
        }));
        root.Add(rebuildAll);

        var planImages = new Argument<string[]>("image") { Arity = ArgumentArity.OneOrMore };
        var plan = new Command("plan", "Print what a build would make, in order, and what it would skip as unchanged; builds nothing") { planImages, f.Single, f.Repo, f.Registry, f.Prefix, f.Tag, f.Force, f.NoCache, f.DockerHost, f.Output };
        plan.SetAction((pr, ct) => Guard(async () =>
        {
            var session = Session(pr, f);
            var (graph, naming) = (session.Graph, session.Naming);
            var order = session.Select(pr.GetValue(planImages)!, pr.GetValue(f.Single));
            IReadOnlyList<PlannedImage>? planned = null;
            string? dockerProblem = null;
            try
            {
                using var docker = Docker(pr.GetValue(f.DockerHost)!);
                planned = await new BuildRunner(docker, graph, Settings(pr, f, naming), new ConsoleBuildLog()).PlanAsync(order, ct);
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
        root.Add(plan);

        var renderImage = new Argument<string>("image");
        var render = new Command("render", "Print the rendered Dockerfile of an image") { renderImage, f.Repo, f.Registry, f.Prefix, f.Tag };
        render.SetAction(pr => GuardSync(() =>
        {
            var repo = ImageRepository.Open(Repository(pr, f));
            Console.Out.Write(repo.Render(repo.Find(BuildSession.Normalize(pr.GetValue(renderImage)!)), Naming(pr, f)));
            return 0;
        }));
        root.Add(render);

        var graphFormat = new Option<string>("--output", "-o") { Description = "tree, dot or json", DefaultValueFactory = _ => "tree" };
        graphFormat.AcceptOnlyFromAmong("tree", "dot", "json");
        var graphCmd = new Command("graph", "Print every image and its parent") { f.Repo, f.Registry, f.Prefix, f.Tag, graphFormat };
        graphCmd.SetAction(pr => GuardSync(() =>
        {
            var session = Session(pr, f);
            Console.Out.Write(GraphText(session.Graph, session.Naming, pr.GetValue(graphFormat)!));
            return 0;
        }));
        root.Add(graphCmd);

        var clean = new Command("clean", "Remove exited containers, then dangling images (failures are reported)") { f.DockerHost };
        clean.SetAction((pr, ct) => Guard(async () =>
        {
            using var docker = Docker(pr.GetValue(f.DockerHost)!);
            return await CleanAsync(docker, ct);
        }));
        root.Add(clean);

        return root;
    }

    private static BuildSession Session(ParseResult pr, Flags f) => BuildSession.Open(Repository(pr, f), Naming(pr, f));

    private static string Repository(ParseResult pr, Flags f) => pr.GetValue(f.Repo) ?? FindRepository(Environment.CurrentDirectory);

    private static NamingOptions Naming(ParseResult pr, Flags f, string? tag = null)
    {
        tag ??= pr.GetValue(f.Tag)!;
        if (NamingOptions.TagProblem(tag) is { } problem)
        {
            throw new RepositoryException($"--tag: {problem}");
        }

        return new NamingOptions(pr.GetValue(f.Registry)!, pr.GetValue(f.Prefix)!, tag);
    }

    /// <summary>The current directory, or the nearest parent that looks like the image repository.</summary>
    internal static string FindRepository(string from)
    {
        for (var d = new DirectoryInfo(from); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "macros.jinja2")) || File.Exists(Path.Combine(d.FullName, "build.py")))
            {
                return d.FullName;
            }
        }

        return from;
    }

    private static BuildSettings Settings(ParseResult pr, Flags f, NamingOptions naming)
    {
        var jobs = pr.CommandResult.Command.Options.Contains(f.Jobs) ? pr.GetValue(f.Jobs) : 2;
        if (jobs is < 1 or > 64)
        {
            throw new RepositoryException($"--jobs: must be between 1 and 64 (got {jobs})");
        }

        bool Flag(Option<bool> o) => pr.CommandResult.Command.Options.Contains(o) && pr.GetValue(o);
        return new BuildSettings(naming, Flag(f.Push), Flag(f.NoCache), Flag(f.Pull), Flag(f.Force), Flag(f.PushSuccessful), jobs);
    }

    internal static BuilderDocker Docker(string endpoint) => new(endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromHours(2),
        BuilderDocker.ReadDockerConfig(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker", "config.json")));

    private static async Task<int> RunBuildAsync(BuildSession session, IReadOnlyList<string> order, BuildSettings settings, string dockerHost, CancellationToken ct)
    {
        using var docker = Docker(dockerHost);
        await docker.PingAsync(ct);
        var reports = await session.RunAsync(docker, order, settings, new ConsoleBuildLog(), ct);
        Console.Out.Write(BuildSession.Summary(reports));
        return reports.All(r => r.Ok) ? 0 : ExitFailed;
    }

    internal static async Task<int> CleanAsync(BuilderDocker docker, CancellationToken ct)
    {
        var problems = 0;
        var containers = await docker.ExitedContainersAsync(ct);
        foreach (var c in containers)
        {
            try
            {
                await docker.RemoveContainerAsync(c.ID, ct);
                Console.Out.WriteLine($"removed exited container {c.ID[..12]} ({string.Join(",", c.Names ?? [])})");
            }
            catch (DockerOperationException ex)
            {
                problems++;
                Console.Error.WriteLine($"cannot remove container {c.ID[..12]}: {ex.Message}");
            }
        }

        var images = await docker.DanglingImagesAsync(ct);
        foreach (var i in images)
        {
            try
            {
                await docker.RemoveImageAsync(i.ID, ct);
                Console.Out.WriteLine($"removed dangling image {i.ID}");
            }
            catch (DockerOperationException ex)
            {
                problems++;
                Console.Error.WriteLine($"cannot remove image {i.ID}: {ex.Message}");
            }
        }

        Console.Out.WriteLine($"clean: {containers.Count} exited container(s), {images.Count} dangling image(s), {problems} failure(s)");
        return problems == 0 ? 0 : ExitFailed;
    }

    internal static string GraphText(ImageGraph graph, NamingOptions naming, string format)
    {
        var sb = new StringBuilder();
        switch (format)
        {
            case "dot":
                sb.Append("digraph images {\n  rankdir=LR;\n");
                foreach (var i in graph.Images)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"  \"{i.ParentPath ?? i.From}\" -> \"{i.Path}\";\n");
                }

                sb.Append("}\n");
                return sb.ToString();
            case "json":
                var arr = new JsonArray();
                foreach (var i in graph.Images)
                {
                    arr.Add((JsonNode)new JsonObject { ["image"] = i.Path, ["name"] = naming.FullName(i.Path), ["parent"] = i.ParentPath, ["from"] = i.From });
                }

                return Output.Json(new JsonObject { ["images"] = arr });
            default:
                foreach (var r in graph.Roots.Order(StringComparer.Ordinal))
                {
                    sb.Append(CultureInfo.InvariantCulture, $"{r}  (FROM {graph[r].From})\n");
                    foreach (var d in graph.Descendants(r))
                    {
                        sb.Append(new string(' ', 2 * graph.Depth(d))).Append(d).Append('\n');
                    }
                }

                return sb.ToString();
        }
    }

    private static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (RepositoryException ex)
        {
            await Console.Error.WriteLineAsync($"toolforge-builder-agent: {ex.Message}");
            return ExitBadInput;
        }
        catch (DockerOperationException ex)
        {
            await Console.Error.WriteLineAsync($"toolforge-builder-agent: {ex.Message}");
            return ExitFailed;
        }
        catch (Git.GitException ex)
        {
            await Console.Error.WriteLineAsync($"toolforge-builder-agent: {ex.Message}");
            return ex.BadInput ? ExitBadInput : ExitFailed;
        }
    }

    private static int GuardSync(Func<int> action) => Guard(() => Task.FromResult(action())).GetAwaiter().GetResult();
}

/// <summary>Build output on stdout, each line prefixed with the image it is about.</summary>
internal sealed class ConsoleBuildLog : IBuildLog
{
    private readonly object _lock = new();

    public void Line(string image, string text)
    {
        lock (_lock)
        {
            Console.Out.WriteLine($"[{image}] {text}");
        }
    }
}
