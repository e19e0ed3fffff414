using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>`build IMAGE...` (build.py's own command) and `build --from-git`: the named images with their ancestors and descendants, in order.</summary>
internal static class BuildCommand
{
    public static Command Create(BuilderCli.Flags f)
    {
        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.ZeroOrMore };
        var git = new GitBuildCommand.Flags();
        var build = new Command("build", "Build images with their ancestors and descendants, in order; or (--from-git) what the new commits changed") { images, f.Repo, f.Registry, f.Prefix, f.Tag, f.Push, f.NoCache, f.Single, f.Jobs, f.Pull, f.Force, f.PushSuccessful, f.DockerHost };
        foreach (var option in git.All)
        {
            build.Options.Add(option);
        }

        build.SetAction((pr, ct) => BuilderCli.Guard(async () =>
        {
            if (GitBuildCommand.UsageProblem(pr, git, pr.GetValue(images)!.Length) is { } usage)
            {
                throw new RepositoryException(usage);
            }

            if (pr.GetValue(git.FromGit))
            {
                return await GitBuildCommand.RunAsync(pr, git, BuilderCli.Repository(pr, f), BuilderCli.Naming(pr, f), naming => BuilderCli.Settings(pr, f, naming),
                    (session, order, settings, t) => BuilderCli.RunBuildAsync(session, order, settings, pr.GetValue(f.DockerHost)!, t), ct);
            }

            var session = BuilderCli.Session(pr, f);
            var order = session.Select(pr.GetValue(images)!, pr.GetValue(f.Single));
            return await BuilderCli.RunBuildAsync(session, order, BuilderCli.Settings(pr, f, session.Naming), pr.GetValue(f.DockerHost)!, ct);
        }));
        return build;
    }
}
