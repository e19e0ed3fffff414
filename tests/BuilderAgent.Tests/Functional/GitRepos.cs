using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// A real git set-up made by the test: a bare repository (the "remote"), a clone where the test commits as an image
/// maintainer would (<see cref="Work"/>), and the builder's own clone (<see cref="Checkout"/>). Starts with a copy of
/// a tree committed and pushed on main.
/// </summary>
internal sealed class GitRepos : IDisposable
{
    private readonly TempDir _dir = new("git-images");

    private GitRepos()
    {
    }

    public string Remote => _dir["remote.git"];

    public string Work => _dir["work"];

    public string Checkout => _dir["checkout"];

    public string this[string name] => _dir[name];

    /// <summary>The bare remote, a maintainer's clone holding <paramref name="tree"/> as the first commit, and the builder's clone of it.</summary>
    public static async Task<GitRepos> CreateAsync(string tree, Action<string>? prepare = null)
    {
        Peer.Require("git", "git");
        var repos = new GitRepos();
        await GitAsync(repos._dir.Path, "init", "--quiet", "--bare", "--initial-branch=main", repos.Remote);
        await GitAsync(repos._dir.Path, "clone", "--quiet", repos.Remote, repos.Work);
        CopyTree(tree, repos.Work);
        prepare?.Invoke(repos.Work);
        await repos.CommitAsync("the image repository as Toolforge has it");
        await GitAsync(repos._dir.Path, "clone", "--quiet", repos.Remote, repos.Checkout);
        return repos;
    }

    /// <summary>Commits everything in the maintainer's clone and pushes it; returns the commit.</summary>
    public async Task<string> CommitAsync(string message)
    {
        await GitAsync(Work, "add", "--all");
        await GitAsync(Work, "-c", "user.name=Image Maintainer", "-c", "user.email=maintainer@example.org", "commit", "--quiet", "-m", message);
        await GitAsync(Work, "push", "--quiet", "origin", "HEAD:main");
        return (await GitAsync(Work, "rev-parse", "HEAD")).Trim();
    }

    public Task<string> HeadAsync(string clone) => GitAsync(clone, "rev-parse", "HEAD").ContinueWith(t => t.Result.Trim(), TaskScheduler.Default);

    public static async Task<string> GitAsync(string dir, params string[] args)
    {
        var r = await Run.ProcessAsync("git", ["-C", dir, .. args], TimeSpan.FromSeconds(60),
            env: new Dictionary<string, string> { ["GIT_CONFIG_NOSYSTEM"] = "1", ["HOME"] = dir, ["GIT_TERMINAL_PROMPT"] = "0" });
        return r.ExitCode == 0 ? r.Stdout : throw new InvalidOperationException($"git {string.Join(' ', args)} in {dir}: {r}");
    }

    /// <summary>Copies a tree (the reference data is read-only: the copies are made writable).</summary>
    public static void CopyTree(string from, string to)
    {
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target, overwrite: true);
            File.SetUnixFileMode(target, (File.GetUnixFileMode(f) | UnixFileMode.UserWrite | UnixFileMode.UserRead) & ~UnixFileMode.SetUser);
        }
    }

    public void Dispose() => _dir.Dispose();
}
