using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>
/// `build --from-git [--since REV]`: fetch the remote branch, refuse a dirty or diverged checkout, fast-forward, and
/// build exactly the images the commits since REV (default: the last commit built from git, else HEAD before the
/// fetch) changed, with their descendants; every image labelled with the commit and the remote.
/// </summary>
internal static class GitBuildCommand
{
    internal sealed class Flags
    {
        public Option<bool> FromGit { get; } = new("--from-git") { Description = "Fetch the remote branch, fast-forward the checkout, build the images the new commits changed (and their descendants)" };
        public Option<string?> Since { get; } = new("--since") { Description = "With --from-git: count changes from this commit (default: the last commit built from git, else HEAD before the fetch)" };
        public Option<string> Remote { get; } = new("--remote") { Description = "With --from-git: the remote name or URL", DefaultValueFactory = _ => new GitOptions().Remote };
        public Option<string> Branch { get; } = new("--branch") { Description = "With --from-git: the remote branch", DefaultValueFactory = _ => new GitOptions().Branch };

        public IEnumerable<Option> All => [FromGit, Since, Remote, Branch];
    }

    /// <summary>Null when the flags make sense together; else the one line that says why not.</summary>
    public static string? UsageProblem(ParseResult pr, Flags g, int images)
    {
        var fromGit = pr.GetValue(g.FromGit);
        if (fromGit && images > 0)
        {
            return "--from-git chooses the images from the commits: name no image with it";
        }

        if (!fromGit && images == 0)
        {
            return "name at least one image (or use --from-git)";
        }

        if (!fromGit && (pr.GetResult(g.Since) is { Implicit: false } || pr.GetResult(g.Remote) is { Implicit: false } || pr.GetResult(g.Branch) is { Implicit: false }))
        {
            return "--since, --remote and --branch go with --from-git";
        }

        if (GitCheckout.RemoteProblem(pr.GetValue(g.Remote)!) is { } remote)
        {
            return $"--remote: {remote}";
        }

        return GitCheckout.BranchProblem(pr.GetValue(g.Branch)!) is { } branch ? $"--branch: {branch}" : null;
    }

    public static async Task<int> RunAsync(ParseResult pr, Flags g, string repository, NamingOptions naming, Func<NamingOptions, BuildSettings> settings,
        Func<BuildSession, IReadOnlyList<string>, BuildSettings, CancellationToken, Task<int>> build, CancellationToken ct)
    {
        var checkout = new GitCheckout(repository, pr.GetValue(g.Remote)!, pr.GetValue(g.Branch)!, new GitOptions().CommandTimeout);
        var (held, notes) = await GitSync.BeginAsync(checkout, TimeProvider.System, ct);
        using var _ = held; // until the build is marked: the daemon's poll of the same checkout waits for its next turn
        foreach (var note in notes)
        {
            Console.Out.WriteLine($"git: {note}");
        }

        var update = await GitSync.UpdateAsync(checkout, pr.GetValue(g.Since), ct);
        var session = BuildSession.Open(checkout.Path, naming);
        var selection = ChangeSelector.Select(update.Changed, session.Graph);
        foreach (var line in GitSync.Describe(checkout, update, selection))
        {
            Console.Out.WriteLine(line);
        }

        // With --since, the mark of what was built moves only when nothing between it and --since is skipped:
        // --since at or before the last commit built (or none built yet). Otherwise the commits in between were
        // never built, and the next --from-git must still see them.
        var built = await checkout.BuiltAsync(ct);
        var mayMark = pr.GetValue(g.Since) is null || built is null || await checkout.IsAncestorAsync(update.Since, built, ct);
        if (selection.Images.Count == 0)
        {
            Console.Out.WriteLine("nothing to build");
            if (mayMark)
            {
                await checkout.MarkBuiltAsync(update.After, ct);
            }

            return 0;
        }

        var exit = await build(session, selection.Paths, settings(naming) with { Source = new ImageSource(update.After, update.SourceUrl) }, ct);
        if (exit == 0 && mayMark)
        {
            await checkout.MarkBuiltAsync(update.After, ct);
        }
        else if (exit == 0)
        {
            Console.Error.WriteLine($"--since {GitUpdate.Short(update.Since)} is after the last commit built ({GitUpdate.Short(built!)}): {GitCheckout.BuiltRef} stays there, so the next --from-git builds the commits in between");
        }
        else
        {
            Console.Error.WriteLine($"not every image built: {GitCheckout.BuiltRef} stays at {GitUpdate.Short(update.Since)}, so the next --from-git builds these changes again");
        }

        return exit;
    }
}
