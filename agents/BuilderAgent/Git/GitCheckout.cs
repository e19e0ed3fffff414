using System.Text.RegularExpressions;

namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// The image repository's git checkout, driven through the git CLI: fetch the remote branch into a ref of the
/// builder's own (<see cref="UpstreamRef"/>), say whether the checkout is dirty or has commits the remote does not,
/// fast-forward it, list the paths changed between two commits, and remember the last commit built
/// (<see cref="BuiltRef"/>, a ref in the checkout itself, shared by the daemon and the command line).
/// </summary>
public sealed partial class GitCheckout
{
    public const string UpstreamRef = "refs/toolforge-builder/upstream";
    public const string BuiltRef = "refs/toolforge-builder/built";

    /// <summary>In the git directory of a checkout this program cloned (so no admin works in it).</summary>
    public const string ClonedMarker = "toolforge-builder.cloned";

    /// <summary>How many files or commits a refusal names before "and N more".</summary>
    public const int Named = 5;

    private readonly GitRunner _git;

    /// <param name="trustOwner">
    /// Read the checkout though another user owns it (git's safe.directory, given on the command line for this path
    /// only): for the repository the builder is configured to build from, whose content it runs anyway — the daemon, a
    /// dynamic user, owns none of it.
    /// </param>
    public GitCheckout(string path, string remote, string branch, TimeSpan timeout, string git = "git", bool trustOwner = false)
    {
        Path = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
        Remote = remote;
        Branch = branch;
        _git = new GitRunner(Path, timeout, git, trustOwner ? ["-c", "safe.directory=" + Path] : null);
    }

    public string Path { get; }

    public string Remote { get; }

    public string Branch { get; }

    /// <summary>Deadline of each git command.</summary>
    public TimeSpan CommandTimeout => _git.Timeout;

    /// <summary>"origin/main" or "https://host/repo.git main", as messages name it.</summary>
    public string Upstream => IsUrl(Remote) ? $"{GitRunner.Safe(RedactUrl(Remote))} {GitRunner.Safe(Branch)}" : $"{GitRunner.Safe(Remote)}/{GitRunner.Safe(Branch)}";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex BranchPattern();

    [GeneratedRegex("^[0-9a-f]{40}([0-9a-f]{24})?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex ObjectId();

    /// <summary>Null when <paramref name="branch"/> is a branch name git takes; else why not.</summary>
    public static string? BranchProblem(string branch) =>
        !BranchPattern().IsMatch(branch) || branch.Contains("..", StringComparison.Ordinal) || branch.EndsWith('/') || branch.EndsWith(".lock", StringComparison.Ordinal) || branch.Contains("//", StringComparison.Ordinal)
            ? $"\"{GitRunner.Safe(branch, 60)}\" is not a branch name (letters, digits, . _ / -, not starting with - or /, no ..)"
            : null;

    /// <summary>Null when <paramref name="remote"/> is a remote name or a URL git may fetch from; else why not.</summary>
    public static string? RemoteProblem(string remote)
    {
        if (remote.Length == 0)
        {
            return "must name a remote of the checkout (\"origin\") or a URL";
        }

        if (remote.StartsWith('-') || remote.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)) || remote.Length > 1000)
        {
            return $"\"{GitRunner.Safe(remote, 60)}\" is not a remote name or URL (no leading -, no spaces or control characters)";
        }

        if (remote.Contains("::", StringComparison.Ordinal))
        {
            return $"\"{GitRunner.Safe(remote, 60)}\": remote helpers (ext::, fd::) are not allowed";
        }

        return null;
    }

    private static bool IsUrl(string remote) => remote.Contains(':', StringComparison.Ordinal) || remote.Contains('/', StringComparison.Ordinal);

    /// <summary>Whether Builder:Git:Remote is a URL (or a path) rather than the name of one of the checkout's remotes.</summary>
    public static bool IsUrlRemote(string remote) => IsUrl(remote);

    /// <summary>A URL without its user information (https://user:token@host/x → https://host/x).</summary>
    public static string RedactUrl(string url)
    {
        // Fail closed, by plain string handling for every scheme (Uri refuses some forms git takes, such as a password
        // holding '@'): no query or fragment (tokens live there too), and nothing of the authority before its last '@'.
        var cut = url.IndexOfAny(['?', '#']);
        if (cut >= 0)
        {
            url = url[..cut];
        }

        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0)
        {
            return url; // scp-like user@host:path (its user holds no password) or a local path
        }

        // Up to the last '@' anywhere after the scheme: a password may hold '/' or '@' unencoded; a path with an '@'
        // (rare in a remote) loses its start in the label rather than a secret leaking.
        var at = url.LastIndexOf('@');
        return at < scheme + 3 ? url : url[..(scheme + 3)] + url[(at + 1)..];
    }

    public async Task<string> HeadAsync(CancellationToken ct) => await ResolveAsync("HEAD", ct).ConfigureAwait(false)
        ?? throw new GitException($"{GitRunner.Safe(Path)}: HEAD names no commit (an empty repository?)");

    /// <summary>The commit <paramref name="rev"/> names, or null when it names none.</summary>
    public async Task<string?> ResolveAsync(string rev, CancellationToken ct)
    {
        if (rev.StartsWith('-') || rev.Any(char.IsControl))
        {
            return null;
        }

        var r = await _git.RunAsync(["rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"], ct, allowFailure: true).ConfigureAwait(false);
        var sha = r.Stdout.Trim();
        return r.ExitCode == 0 && ObjectId().IsMatch(sha) ? sha : null;
    }

    /// <summary>Checks that <see cref="Path"/> is a git work tree (one line naming it when not).</summary>
    public async Task CheckWorkTreeAsync(CancellationToken ct)
    {
        if (!Directory.Exists(Path))
        {
            throw new GitException($"{GitRunner.Safe(Path)}: no such directory");
        }

        var r = await _git.RunAsync(["rev-parse", "--is-inside-work-tree"], ct, allowFailure: true).ConfigureAwait(false);
        if (r.ExitCode != 0 || r.Stdout.Trim() != "true")
        {
            throw new GitException($"{GitRunner.Safe(Path)} is not a git checkout: {GitRunner.Safe(GitRunner.GitMessage(r.Stderr))}");
        }
    }

    /// <summary>The checkout's git directory (".git", or where a worktree's points).</summary>
    public async Task<string> GitDirectoryAsync(CancellationToken ct)
    {
        var dotGit = System.IO.Path.Combine(Path, ".git");
        if (Directory.Exists(dotGit))
        {
            return dotGit;
        }

        var r = await _git.RunAsync(["rev-parse", "--absolute-git-dir"], ct).ConfigureAwait(false);
        return r.Stdout.Trim();
    }

    /// <summary>
    /// Clones <see cref="Remote"/> (a URL) at <see cref="Branch"/> into <see cref="Path"/> when nothing is there yet
    /// (the daemon's own checkout, e.g. in its state directory): true when it cloned. A directory that exists is left to
    /// <see cref="CheckWorkTreeAsync"/>; one whose parent is missing is named.
    /// </summary>
    public async Task<bool> CloneIfAbsentAsync(CancellationToken ct)
    {
        try
        {
            return await CloneIfAbsentUncheckedAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new GitException($"cannot clone {Upstream} into {GitRunner.Safe(Path)}: {GitRunner.Safe(ex.Message)}");
        }
    }

    private async Task<bool> CloneIfAbsentUncheckedAsync(CancellationToken ct)
    {
        if (Directory.Exists(Path) && Directory.EnumerateFileSystemEntries(Path).Any())
        {
            return false;
        }

        if (!IsUrl(Remote))
        {
            return false; // a remote name needs a checkout that has it: CheckWorkTreeAsync says what is missing
        }

        var parent = System.IO.Path.GetDirectoryName(Path) ?? "/";
        if (!Directory.Exists(parent))
        {
            throw new GitException($"cannot clone {Upstream} into {GitRunner.Safe(Path)}: directory {GitRunner.Safe(parent)} does not exist");
        }

        // One cloner at a time (the daemon's first poll and a `build --from-git` may start together): the other is
        // refused in one line, and once in, the checkout is looked at again.
        using var cloning = CheckoutLock.TakeFile(Path, $"{Path}.lock");
        if (Directory.Exists(Path) && Directory.EnumerateFileSystemEntries(Path).Any())
        {
            return false;
        }

        // Into a new directory beside it, renamed into place: a clone killed half-way leaves no checkout that looks whole.
        var partial = $"{Path}.cloning";
        if (Directory.Exists(partial))
        {
            Directory.Delete(partial, recursive: true);
        }

        var clone = new GitRunner(parent, _git.Timeout, _git.Git);
        await clone.RunAsync(["clone", "--quiet", "--no-tags", "--single-branch", "--branch", Branch, "--end-of-options", Remote, partial], ct).ConfigureAwait(false);
        await File.WriteAllTextAsync(System.IO.Path.Combine(partial, ".git", ClonedMarker), "cloned by toolforge-builder-agent: no admin works here\n", ct).ConfigureAwait(false);
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path); // empty (checked above)
        }

        Directory.Move(partial, Path);
        return true;
    }

    /// <summary>
    /// A <c>.git/index.lock</c> older than <paramref name="staleAfter"/>: git left it when it was killed, and every
    /// later command that writes the index refuses to run. In a checkout only this program uses (<paramref name="owned"/>,
    /// the daemon's clone), and with <see cref="CheckoutLock"/> held, it is removed (returned, to be said); elsewhere an
    /// admin may be in the middle of a commit, so it is named with what to do.
    /// </summary>
    public static string? ClearStaleIndexLock(string checkout, string gitDirectory, TimeSpan staleAfter, bool owned, DateTimeOffset now)
    {
        var path = System.IO.Path.Combine(gitDirectory, "index.lock");
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }

        var age = now - info.LastWriteTimeUtc;
        if (!owned || age < staleAfter)
        {
            throw new GitException($"{GitRunner.Safe(path)} exists (age {age.TotalSeconds:0} s): a git command runs in {GitRunner.Safe(checkout)}, or one was killed; remove the file if no git runs there");
        }

        info.Delete();
        return $"removed {GitRunner.Safe(path)}, left {age.TotalMinutes:0} min ago by a git command that was killed";
    }

    /// <summary>Fetches the branch into <see cref="UpstreamRef"/>; returns its commit.</summary>
    public async Task<string> FetchAsync(CancellationToken ct)
    {
        await _git.RunAsync(["fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--end-of-options", Remote, $"+refs/heads/{Branch}:{UpstreamRef}"], ct).ConfigureAwait(false);
        return await ResolveAsync(UpstreamRef, ct).ConfigureAwait(false)
            ?? throw new GitException($"fetch of {Upstream} into {GitRunner.Safe(Path)} left no commit");
    }

    /// <summary>
    /// The tree of <paramref name="commit"/>: every path (recursively, '/' separated) with its mode and object id
    /// (ls-tree: plumbing that runs no filter, hook or helper of the checkout's configuration).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, (string Mode, string Blob)>> TreeAsync(string commit, CancellationToken ct)
    {
        var r = await _git.RunAsync(["ls-tree", "-r", "-z", "--full-tree", "--end-of-options", commit], ct).ConfigureAwait(false);
        var tree = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var entry in r.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            // "<mode> SP <type> SP <object> TAB <path>"
            var tab = entry.IndexOf('\t', StringComparison.Ordinal);
            var fields = tab > 0 ? entry[..tab].Split(' ') : [];
            if (fields.Length != 3)
            {
                throw new GitException($"ls-tree of {commit[..Math.Min(12, commit.Length)]} in {GitRunner.Safe(Path)}: a line in no form read here");
            }

            tree[entry[(tab + 1)..]] = (fields[0], fields[2]);
        }

        return tree;
    }

    /// <summary>Paths with uncommitted changes or untracked (not ignored) files, with git's two-letter status.</summary>
    public async Task<IReadOnlyList<string>> DirtyAsync(CancellationToken ct)
    {
        var r = await _git.RunAsync(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none", "--", "."], ct).ConfigureAwait(false);
        var entries = r.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var dirty = new List<string>();
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            if (e.Length < 4)
            {
                continue;
            }

            dirty.Add($"{e[..2].Trim()} {e[3..]}");
            if (e[0] is 'R' or 'C')
            {
                i++; // the rename's source path follows
            }
        }

        return dirty;
    }

    /// <summary>Commits of HEAD that <paramref name="upstream"/> does not have (count, and the first few as "abc1234 subject").</summary>
    public async Task<(int Count, IReadOnlyList<string> First)> LocalOnlyAsync(string upstream, CancellationToken ct)
    {
        var count = await _git.RunAsync(["rev-list", "--count", $"{upstream}..HEAD", "--"], ct).ConfigureAwait(false);
        var n = int.Parse(count.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        if (n == 0)
        {
            return (0, []);
        }

        var list = await _git.RunAsync(["rev-list", $"--max-count={Named}", "--no-commit-header", "--format=%h %s", $"{upstream}..HEAD", "--"], ct).ConfigureAwait(false);
        return (n, list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList());
    }

    /// <summary>Refuses a checkout that is dirty or has commits the remote does not (one line naming them).</summary>
    public async Task RefuseDirtyOrDivergedAsync(string upstream, CancellationToken ct)
    {
        var dirty = await DirtyAsync(ct).ConfigureAwait(false);
        if (dirty.Count > 0)
        {
            throw new GitException($"{GitRunner.Safe(Path)} has {dirty.Count} uncommitted change(s): {Names(dirty, dirty.Count)}; commit, stash or remove them (the builder builds only commits of {Upstream})");
        }

        var (count, first) = await LocalOnlyAsync(upstream, ct).ConfigureAwait(false);
        if (count > 0)
        {
            throw new GitException($"{GitRunner.Safe(Path)} has diverged from {Upstream}: {count} local commit(s) not on the remote: {Names(first, count)}; push them or reset the checkout to {Upstream}");
        }
    }

    private static string Names(IReadOnlyList<string> items, int total) =>
        string.Join(", ", items.Take(Named).Select(i => GitRunner.Safe(i, 120))) + (total > Named ? $" and {total - Named} more" : string.Empty);

    /// <summary>Moves the checkout's HEAD forward to <paramref name="commit"/> (refused by git if it is not a fast-forward).</summary>
    public Task FastForwardAsync(string commit, CancellationToken ct) =>
        _git.RunAsync(["merge", "--ff-only", "--quiet", "--no-edit", "--no-verify-signatures", commit], ct);

    /// <summary>Paths (relative to the checkout's directory, '/') that differ between two commits; a rename is both its paths.</summary>
    public async Task<IReadOnlyList<string>> ChangedAsync(string from, string to, CancellationToken ct)
    {
        var r = await _git.RunAsync(["diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", "--relative", from, to, "--"], ct).ConfigureAwait(false);
        return r.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>The last commit a build from git finished for (every image built), or null.</summary>
    public Task<string?> BuiltAsync(CancellationToken ct) => ResolveAsync(BuiltRef, ct);

    /// <summary>Whether <paramref name="ancestor"/> is <paramref name="commit"/> or one of its ancestors (both commit ids).</summary>
    public async Task<bool> IsAncestorAsync(string ancestor, string commit, CancellationToken ct) =>
        (await _git.RunAsync(["merge-base", "--is-ancestor", ancestor, commit], ct, allowFailure: true).ConfigureAwait(false)).ExitCode == 0;

    public Task MarkBuiltAsync(string commit, CancellationToken ct) =>
        _git.RunAsync(["update-ref", "-m", "toolforge-builder-agent: built", BuiltRef, commit], ct);

    /// <summary>Where the commits come from, for the org.opencontainers.image.source label: the remote's URL without credentials.</summary>
    public async Task<string> SourceUrlAsync(CancellationToken ct)
    {
        if (IsUrl(Remote))
        {
            return RedactUrl(Remote);
        }

        var r = await _git.RunAsync(["remote", "get-url", "--", Remote], ct, allowFailure: true).ConfigureAwait(false);
        return r.ExitCode == 0 ? RedactUrl(r.Stdout.Trim()) : Remote;
    }
}
