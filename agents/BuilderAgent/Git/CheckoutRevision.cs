using System.Security.Cryptography;
using System.Text;
using Toolforge.Agents.BuilderAgent.Build;

namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// The commit the image repository's working tree is exactly (issue 27: the revision a coordinator build records), judged
/// without running anything the checkout's own git configuration could name: the daemon (a dynamic user in the docker
/// group, so root-equivalent) reads a checkout root owns, and `git status` would run the clean filters its
/// .git/config and .gitattributes name. So git is asked only plumbing that runs no filter, hook or helper — rev-parse
/// for HEAD, ls-tree for HEAD's tree, merge-base and remote get-url — with safe.directory given for the canonical
/// path alone, and this process hashes every file of the working tree as git stores it (a blob's sha1, the executable
/// bit, a link's target) and compares: a file changed, missing, or not in HEAD (untracked or ignored: the build copies
/// whatever is there) makes the tree no commit. A .git that is no directory (a linked work tree, a .git file pointing
/// elsewhere) and submodules are not judged: no revision.
/// </summary>
public static class CheckoutRevision
{
    /// <summary>A working tree of more files than this is not judged (no revision).</summary>
    public const int MaxFiles = 20_000;

    /// <summary>The git calls of one judgement together, at most this long.</summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(30);

    /// <summary>What was found: the source (null: no commit) and, when none, why.</summary>
    public sealed record Judgement(ImageSource? Source, string? Why);

    public static async Task<Judgement> JudgeAsync(string repository, string remote, string branch, CancellationToken ct)
    {
        string root;
        try
        {
            root = Canonical(repository);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Judgement(null, $"{GitRunner.Safe(repository)} cannot be resolved: {GitRunner.Safe(ex.Message)}");
        }

        var dotGit = new DirectoryInfo(Path.Combine(root, ".git"));
        if (!dotGit.Exists || dotGit.LinkTarget is not null)
        {
            return new Judgement(null, $"{GitRunner.Safe(root)} has no .git directory of its own (not a checkout, a linked work tree, or a .git file or link)");
        }

        using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
        budget.CancelAfter(Budget);
        var checkout = new GitCheckout(root, remote, branch, Budget, trustOwner: true);
        try
        {
            var head = await checkout.ResolveAsync("HEAD", budget.Token).ConfigureAwait(false);
            if (head is null)
            {
                return new Judgement(null, $"{GitRunner.Safe(root)}: HEAD names no commit");
            }

            var tree = await checkout.TreeAsync(head, budget.Token).ConfigureAwait(false);
            if (tree.Values.Any(e => e.Mode == "160000"))
            {
                return new Judgement(null, $"{GitRunner.Safe(root)} has submodules: not judged");
            }

            if (Differences(root, tree) is { Count: > 0 } differences)
            {
                return new Judgement(null, $"{GitRunner.Safe(root)} is not commit {head[..12]}: {string.Join(", ", differences.Take(GitCheckout.Named).Select(d => GitRunner.Safe(d, 120)))}{(differences.Count > GitCheckout.Named ? $" and {differences.Count - GitCheckout.Named} more" : string.Empty)}");
            }

            // A local commit is no commit of the remote: recorded only when HEAD is on the remote's branch as last fetched.
            var upstream = await checkout.ResolveAsync($"refs/remotes/{remote}/{branch}", budget.Token).ConfigureAwait(false);
            if (upstream is not null && !await checkout.IsAncestorAsync(head, upstream, budget.Token).ConfigureAwait(false))
            {
                return new Judgement(null, $"{GitRunner.Safe(root)}: HEAD {head[..12]} is not on {GitRunner.Safe(remote)}/{GitRunner.Safe(branch)} (a local commit)");
            }

            var url = await checkout.SourceUrlAsync(budget.Token).ConfigureAwait(false);
            var files = tree.ToDictionary(kv => kv.Key, kv => kv.Value.Mode + " " + kv.Value.Blob, StringComparer.Ordinal);
            return new Judgement(new ImageSource(head, url == remote && !url.Contains(':', StringComparison.Ordinal) && !url.Contains('/', StringComparison.Ordinal) ? string.Empty : url) { Root = root, Files = files }, null);
        }
        catch (GitException ex)
        {
            return new Judgement(null, ex.Message);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new Judgement(null, $"{GitRunner.Safe(root)}: not judged within {Budget.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Judgement(null, $"{GitRunner.Safe(root)}: {GitRunner.Safe(ex.Message)}");
        }
    }

    /// <summary>The path with every link on the way resolved (git compares safe.directory with the real top level).</summary>
    public static string Canonical(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var parts = full.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = "/";
        foreach (var part in parts)
        {
            var next = Path.Combine(current, part);
            var info = new FileInfo(next);
            if (info.LinkTarget is not null)
            {
                next = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? next;
                next = Canonical(next); // a target may itself go through links
            }

            current = next;
        }

        return current;
    }

    /// <summary>How the working tree under <paramref name="root"/> differs from <paramref name="tree"/> (HEAD's: path → mode and blob), in words.</summary>
    public static List<string> Differences(string root, IReadOnlyDictionary<string, (string Mode, string Blob)> tree)
    {
        var differences = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var count = 0;
        foreach (var path in Walk(root, root))
        {
            if (++count > MaxFiles)
            {
                differences.Add($"more than {MaxFiles} files (not judged)");
                return differences;
            }

            var relative = Path.GetRelativePath(root, path).Replace('\\', '/');
            seen.Add(relative);
            if (!tree.TryGetValue(relative, out var expected))
            {
                differences.Add($"{relative} is not in the commit");
                continue;
            }

            var (mode, blob) = Entry(path, expected.Blob.Length == 64);
            if (mode != expected.Mode || blob != expected.Blob)
            {
                differences.Add($"{relative} differs from the commit");
            }
        }

        differences.AddRange(tree.Keys.Where(k => !seen.Contains(k)).Order(StringComparer.Ordinal).Select(k => $"{k} is missing"));
        return differences;
    }

    /// <summary>Whether every one of <paramref name="files"/> (paths under <see cref="ImageSource.Root"/>) is still as in the commit.</summary>
    public static bool StillMatches(ImageSource source, IEnumerable<string> files)
    {
        if (source.Files is null || source.Root is null)
        {
            return false;
        }

        foreach (var full in files)
        {
            var relative = Path.GetRelativePath(source.Root, full).Replace('\\', '/');
            if (!source.Files.TryGetValue(relative, out var expected))
            {
                return false;
            }

            try
            {
                var (mode, blob) = Entry(full, expected.Length > 47);
                if (expected != mode + " " + blob)
                {
                    return false;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }

        return true;
    }

    // Every file and link under `dir` (links not followed), .git at the top left out.
    private static IEnumerable<string> Walk(string root, string dir)
    {
        foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
        {
            if (dir == root && entry.Name == ".git")
            {
                continue;
            }

            if (entry is DirectoryInfo d && d.LinkTarget is null)
            {
                foreach (var f in Walk(root, d.FullName))
                {
                    yield return f;
                }
            }
            else
            {
                yield return entry.FullName;
            }
        }
    }

    // The file as git stores it: mode 100644, 100755 (an executable bit of its owner) or 120000 (a link: its target), and
    // the blob's id, sha1("blob <length>\0" + content) — sha256 in a SHA-256 repository (its ids are 64 hex).
    private static (string Mode, string Blob) Entry(string path, bool sha256)
    {
        var info = new FileInfo(path);
        byte[] content;
        string mode;
        if (info.LinkTarget is { } target)
        {
            content = Encoding.UTF8.GetBytes(target);
            mode = "120000";
        }
        else
        {
            content = File.ReadAllBytes(path);
            mode = !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0 ? "100755" : "100644";
        }

        var header = Encoding.ASCII.GetBytes($"blob {content.Length}\0");
#pragma warning disable CA5350 // git's object ids: this computes git's names for the bytes, it protects nothing
        using var sha = IncrementalHash.CreateHash(sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1);
#pragma warning restore CA5350
        sha.AppendData(header);
        sha.AppendData(content);
        return (mode, Convert.ToHexStringLower(sha.GetHashAndReset()));
    }
}
