using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>
/// toolforge-builder-agent's command line: build.py's flags (image path, --push, --docker-registry, -t/--tag,
/// --image-prefix, --no-cache, -s/--single) and ours (--jobs, --pull, --force, --repo, --push-successful).
/// Exit codes: 0 all good, 1 something failed to build or push, 2 bad input (repository, template, flags).
/// One command per file beside this one (BuildCommand, RebuildAllCommand, PlanCommand, RenderCommand, GraphCommand,
/// CleanCommand); this class holds the flags they share and what they do alike (open the repository, name, guard).
/// </summary>
internal static class BuilderCli
{
    public const int ExitFailed = ExitCodes.Failed;
    public const int ExitBadInput = ExitCodes.Usage;

    internal sealed class Flags
    {
        public Option<string?> Repo { get; } = new("--repo") { Description = "The image repository (default: the current directory or the nearest parent that holds one)" };
        public Option<string> Registry { get; } = new("--docker-registry") { Description = "Registry the images are named for", DefaultValueFactory = _ => NamingOptions.DefaultRegistry };
        public Option<string> Prefix { get; } = new("--image-prefix") { Description = "Prefix of every image name", DefaultValueFactory = _ => NamingOptions.DefaultPrefix };
        public Option<string> Tag { get; } = new("--tag", "-t") { Description = "testing (default) or latest (build.py's; skips the verify step: `promote` moves latest to a verified testing digest)", DefaultValueFactory = _ => "testing" };
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
        return [BuildCommand.Create(f), RebuildAllCommand.Create(f), PlanCommand.Create(f), RenderCommand.Create(f), GraphCommand.Create(f), CleanCommand.Create(f)];
    }

    internal static BuildSession Session(ParseResult pr, Flags f) => BuildSession.Open(Repository(pr, f), Naming(pr, f));

    internal static string Repository(ParseResult pr, Flags f) => pr.GetValue(f.Repo) ?? FindRepository(Environment.CurrentDirectory);

    internal static NamingOptions Naming(ParseResult pr, Flags f, string? tag = null)
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

    internal static BuildSettings Settings(ParseResult pr, Flags f, NamingOptions naming)
    {
        var jobs = pr.CommandResult.Command.Options.Contains(f.Jobs) ? pr.GetValue(f.Jobs) : 2;
        if (jobs is < 1 or > 64)
        {
            throw new RepositoryException($"--jobs: must be between 1 and 64 (got {jobs})");
        }

        bool Flag(Option<bool> o) => pr.CommandResult.Command.Options.Contains(o) && pr.GetValue(o);
        if (naming.Tag == Promotion.TagPolicy.Latest)
        {
            Console.Error.WriteLine(Promotion.TagPolicy.LatestSkipsVerify);
        }

        return new BuildSettings(naming, Flag(f.Push), Flag(f.NoCache), Flag(f.Pull), Flag(f.Force), Flag(f.PushSuccessful), jobs);
    }

    internal static BuilderDocker Docker(string endpoint) => new(endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromHours(2),
        BuilderDocker.ReadDockerConfig(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker", "config.json")));

    internal static async Task<int> RunBuildAsync(BuildSession session, IReadOnlyList<string> order, BuildSettings settings, string dockerHost, CancellationToken ct)
    {
        using var docker = Docker(dockerHost);
        await docker.PingAsync(ct);
        var reports = await session.RunAsync(docker, order, settings, new ConsoleBuildLog(), ct);
        Console.Out.Write(BuildSession.Summary(reports));
        return reports.All(r => r.Ok) ? 0 : ExitFailed;
    }

    internal static async Task<int> Guard(Func<Task<int>> action)
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
        catch (Promotion.PromotionException ex)
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

    internal static int GuardSync(Func<int> action) => Guard(() => Task.FromResult(action())).GetAwaiter().GetResult();
}
