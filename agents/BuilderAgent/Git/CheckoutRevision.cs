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

        // A partial clone fetches missing objects lazily, with the checkout's own helpers: not judged (GIT_NO_LAZY_FETCH
        // is set too, but an older git ignores it). A .git this daemon cannot read is no judgement either, not a failed build.
        try
        {
            var pack = Path.Combine(dotGit.FullName, "objects", "pack");
            var config = Path.Combine(dotGit.FullName, "config");
            if ((Directory.Exists(pack) && Directory.EnumerateFiles(pack, "*.promisor").Any())
                || (File.Exists(config) && File.ReadAllText(config).Contains("partialclone", StringComparison.OrdinalIgnoreCase)))
            {
                return new Judgement(null, $"{GitRunner.Safe(root)} is a partial clone: not judged");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Judgement(null, $"{GitRunner.Safe(root)}/.git cannot be read: {GitRunner.Safe(ex.Message)}");
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

            // Off the caller's thread and within the budget: a file that blocks on open (a FIFO) or a tree too big to hash in time ends the judgement, not the build lane.
            var differences = await Task.Run(() => Differences(root, tree, budget.Token), CancellationToken.None).WaitAsync(budget.Token).ConfigureAwait(false);
            if (differences.Count > 0)
            {
                return new Judgement(null, $"{GitRunner.Safe(root)} is not commit {head[..12]}: {string.Join(", ", differences.Take(GitCheckout.Named).Select(d => GitRunner.Safe(d, 120)))}{(differences.Count > GitCheckout.Named ? $" and {differences.Count - GitCheckout.Named} more" : string.Empty)}");
            }

            // A local commit is no commit of the remote: recorded only when HEAD is on the remote's branch as last fetched.
            // The remote's branch as last fetched: its remote-tracking branch, or (a URL remote, or a checkout the builder's
            // own poll fetches) the ref the poll fetches into.
            var upstream = (GitCheckout.IsUrlRemote(remote) ? null : await checkout.ResolveAsync($"refs/remotes/{remote}/{branch}", budget.Token).ConfigureAwait(false))
                ?? await checkout.ResolveAsync(GitCheckout.UpstreamRef, budget.Token).ConfigureAwait(false);
            if (upstream is null)
            {
                return new Judgement(null, $"{GitRunner.Safe(root)} has no {GitRunner.Safe(remote)}/{GitRunner.Safe(branch)} nor {GitCheckout.UpstreamRef} (Builder:Git:Remote and Branch): whether HEAD is published cannot be told");
            }

            if (!await checkout.IsAncestorAsync(head, upstream, budget.Token).ConfigureAwait(false))
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
    public static string Canonical(string path) => Canonical(path, 0);

    private static string Canonical(string path, int depth)
    {
        if (depth > 40)
        {
            throw new IOException($"{path}: too many levels of links");
        }

        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var current = "/";
        foreach (var part in full.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            var info = new FileInfo(next);
            if (info.LinkTarget is { } target)
            {
                // One hop at a time, a relative target taken from the link's own (already real) directory.
                next = Canonical(Path.IsPathRooted(target) ? target : Path.Combine(current, target), depth + 1);
            }

            current = next;
        }

        return current;
    }

    /// <summary>How the working tree under <paramref name="root"/> differs from <paramref name="tree"/> (HEAD's: path → mode and blob), in words.</summary>
    public static List<string> Differences(string root, IReadOnlyDictionary<string, (string Mode, string Blob)> tree, CancellationToken ct = default)
    {
        var differences = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var count = 0;
        foreach (var path in Walk(root, root))
        {
            ct.ThrowIfCancellationRequested();
            if (++count > MaxFiles)
            {
                differences.Add($"more than {MaxFiles} files (not judged)");
                return differences;
            }

            var relative = Path.GetRelativePath(root, path);
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

    /// <summary>
    /// Whether every one of <paramref name="files"/> (relative to <paramref name="inputsRoot"/>, the repository as the
    /// build opened it — the judged root or a link to it) is still as in the commit.
    /// </summary>
    public static bool StillMatches(ImageSource source, string inputsRoot, IEnumerable<string> files)
    {
        if (source.Files is null || source.Root is null)
        {
            return false;
        }

        try
        {
            if (Canonical(inputsRoot) != source.Root)
            {
                return false; // not the tree that was judged
            }

            foreach (var relative in files)
            {
                var full = Path.Combine(inputsRoot, relative);
                if (!source.Files.TryGetValue(relative, out var expected) || !IsFileOrLink(full))
                {
                    return false;
                }

                var (mode, blob) = Entry(full, expected.Length > 47);
                if (expected != mode + " " + blob)
                {
                    return false;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return true;
    }

    // A file or a link (not a directory). A FIFO is never opened: it reports no size, and a file of no size is hashed
    // without opening it (Entry), so nothing here can block on one.
    private static bool IsFileOrLink(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is not null || (info.Exists && (info.Attributes & FileAttributes.Directory) == 0);
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
#pragma warning disable CA5350 // git's object ids: this computes git's names for the bytes, it protects nothing
        using var hash = IncrementalHash.CreateHash(sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1);
#pragma warning restore CA5350
        var info = new FileInfo(path);
        if (info.LinkTarget is { } target)
        {
            var bytes = Encoding.UTF8.GetBytes(target);
            hash.AppendData(Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"));
            hash.AppendData(bytes);
            return ("120000", Convert.ToHexStringLower(hash.GetHashAndReset()));
        }

        var mode = !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0 ? "100755" : "100644";
        if (info.Length == 0)
        {
            // Not opened: an empty file's blob is known, and a FIFO (which reports no size) would block the open.
            hash.AppendData("blob 0\0"u8);
            return (mode, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }

        // Streamed: a large file costs time, not memory.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 81920);
        hash.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
        var buffer = new byte[81920];
        long read = 0;
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            hash.AppendData(buffer.AsSpan(0, n));
            read += n;
        }

        if (read != stream.Length)
        {
            throw new IOException($"{path} changed while it was read");
        }

        return (mode, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }
}
