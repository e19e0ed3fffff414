using System.Diagnostics;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

/// <summary>
/// Change detection and selection on Toolforge's real tree (52 images), in a real git checkout: for a commit that
/// touches a leaf, a series base and the shared macros, the time from "HEAD moved" to "these images, with reasons":
/// git diff (a subprocess), opening the repository and rendering every template (the graph at the new commit), and
/// the selection. Also the whole update a poll makes (fetch from a local bare remote, the dirty/diverged checks,
/// fast-forward, diff). Median and worst of 20 runs each.
/// </summary>
internal static class GitSelectionBench
{
    public const double BoundMs = 100;

    public static async Task<bool> RunAsync()
    {
        var tree = Run.ReferenceData("toollabs-images", "the reference toollabs-images repository");
        using var dir = new TempDir("bench-git");
        var remote = dir["remote.git"];
        var work = dir["work"];
        var checkout = dir["checkout"];
        await Git(dir.Path, "init", "--quiet", "--bare", "--initial-branch=main", remote);
        await Git(dir.Path, "clone", "--quiet", remote, work);
        foreach (var f in Directory.EnumerateFiles(tree, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(work, Path.GetRelativePath(tree, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
            File.SetUnixFileMode(target, File.GetUnixFileMode(f) | UnixFileMode.UserWrite);
        }

        var initial = await Commit(work, "tree");
        await Git(dir.Path, "clone", "--quiet", remote, checkout);
        var changes = new (string Name, string File)[]
        {
            ("leaf (python311-sssd/web)", "python311-sssd/web/Dockerfile.template"),
            ("series base (bookworm-sssd)", "bookworm-sssd/Dockerfile.template"),
            ("shared include (macros.jinja2)", "macros.jinja2"),
        };
        var ok = true;
        var git = new GitCheckout(checkout, "origin", "main", TimeSpan.FromMinutes(1));
        foreach (var (name, file) in changes)
        {
            var before = (await Git(work, "rev-parse", "HEAD")).Trim();
            await File.AppendAllTextAsync(Path.Combine(work, file), "\n{# bench #}\n");
            var after = await Commit(work, name);

            // The whole update a poll makes, from a local remote: fetch, checks, fast-forward, diff.
            var update = await GitSync.UpdateAsync(git, before, default);
            if (update.After != after)
            {
                throw new InvalidOperationException("the checkout did not move to the new commit");
            }

            var detect = new List<double>();
            var updates = new List<double>();
            ChangeSelection? selection = null;
            for (var i = 0; i < 21; i++)
            {
                var sw = Stopwatch.StartNew();
                var changed = await git.ChangedAsync(before, after, default);
                var graph = ImageRepository.Open(checkout).Graph(new NamingOptions());
                selection = ChangeSelector.Select(changed, graph);
                sw.Stop();
                var whole = Stopwatch.StartNew();
                _ = await GitSync.UpdateAsync(git, before, default);
                whole.Stop();
                if (i > 0)
                {
                    detect.Add(sw.Elapsed.TotalMilliseconds);
                    updates.Add(whole.Elapsed.TotalMilliseconds);
                }
            }

            detect.Sort();
            updates.Sort();
            var median = detect[detect.Count / 2];
            ok &= median <= BoundMs;
            Console.WriteLine($"git change detection + selection, {name}: {selection!.Images.Count} of 52 image(s); "
                + $"diff+graph+select median {median:0.0} ms, worst {detect[^1]:0.0} ms (bound {BoundMs:0} ms: {(median <= BoundMs ? "met" : "MISSED")}); "
                + $"whole poll update (fetch, checks, ff, diff) median {updates[updates.Count / 2]:0.0} ms");
        }

        _ = initial;
        return ok;
    }

    private static async Task<string> Commit(string work, string message)
    {
        await Git(work, "add", "--all");
        await Git(work, "-c", "user.name=bench", "-c", "user.email=bench@example.org", "commit", "--quiet", "-m", message);
        await Git(work, "push", "--quiet", "origin", "HEAD:main");
        return (await Git(work, "rev-parse", "HEAD")).Trim();
    }

    private static async Task<string> Git(string dir, params string[] args)
    {
        var r = await Run.ProcessAsync("git", ["-C", dir, .. args], TimeSpan.FromSeconds(60));
        return r.ExitCode == 0 ? r.Stdout : throw new InvalidOperationException($"git {string.Join(' ', args)}: {r}");
    }
}
