using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// The commit a coordinator build records (issue 27), judged against real git checkouts: exactly the commit, or no
/// revision — and nothing the checkout's own configuration names is ever run (the daemon is root-equivalent).
/// </summary>
public sealed class CheckoutRevisionTests
{
    private static async Task<(GitRepos Repos, string Head)> CheckoutAsync()
    {
        using var tree = new TempDir("rev-tree");
        Directory.CreateDirectory(tree["base/etc"]);
        await File.WriteAllTextAsync(tree["base/Dockerfile.template"], "FROM scratch\nCOPY base/etc /etc\n");
        await File.WriteAllTextAsync(tree["base/etc/motd"], "hello\n");
        await File.WriteAllTextAsync(tree["run.sh"], "#!/bin/sh\n");
        File.SetUnixFileMode(tree["run.sh"], (UnixFileMode)Convert.ToInt32("755", 8));
        var repos = await GitRepos.CreateAsync(tree.Path);
        File.CreateSymbolicLink(Path.Combine(repos.Work, "latest"), "base"); // a link, committed as one (mode 120000)
        await repos.CommitAsync("a link");
        await GitRepos.GitAsync(repos.Checkout, "pull", "--quiet", "--ff-only");
        return (repos, await repos.HeadAsync(repos.Checkout));
    }

    [Fact]
    public async Task AClean_Checkout_IsItsCommit_WithTheRemotesUrl_ThroughALinkToo()
    {
        var (repos, head) = await CheckoutAsync();
        using var _ = repos;
        var judged = await CheckoutRevision.JudgeAsync(repos.Checkout, "origin", "main", CancellationToken.None);
        Assert.True(judged.Source is not null, judged.Why);
        Assert.Equal(head, judged.Source.Revision);
        Assert.Equal(repos.Remote, judged.Source.Url);

        File.CreateSymbolicLink(repos["link-to-checkout"], repos.Checkout); // Builder:Repository through a link
        var linked = await CheckoutRevision.JudgeAsync(repos["link-to-checkout"], "origin", "main", CancellationToken.None);
        Assert.Equal(head, linked.Source?.Revision);
        Assert.Equal(repos.Checkout, linked.Source!.Root);
        // An image's inputs, as the build reads them through the link, still match; one changed since does not.
        Assert.True(CheckoutRevision.StillMatches(linked.Source, repos["link-to-checkout"], ["base/etc/motd", "run.sh", "latest"]));
        await File.AppendAllTextAsync(Path.Combine(repos.Checkout, "base/etc/motd"), "moved on\n");
        Assert.False(CheckoutRevision.StillMatches(linked.Source, repos["link-to-checkout"], ["base/etc/motd"]));

        // A link loop on the way: said, not a crash.
        File.CreateSymbolicLink(repos["loop"], repos["loop"]);
        Assert.Contains("too many levels of links", (await CheckoutRevision.JudgeAsync(Path.Combine(repos["loop"], "x"), "origin", "main", CancellationToken.None)).Why, StringComparison.Ordinal);

        await GitRepos.GitAsync(repos.Checkout, "checkout", "--quiet", "--", "base/etc/motd");

        // No remote-tracking branch: whether HEAD is published cannot be told, so no revision.
        Assert.Contains("has no upstream/main", (await CheckoutRevision.JudgeAsync(repos.Checkout, "upstream", "main", CancellationToken.None)).Why, StringComparison.Ordinal);

        // Builder:Git:Remote as a URL: the ref the builder's poll fetches into is the remote's branch.
        Assert.Contains($"nor {GitCheckout.UpstreamRef}", (await CheckoutRevision.JudgeAsync(repos.Checkout, repos.Remote, "main", CancellationToken.None)).Why, StringComparison.Ordinal);
        await GitRepos.GitAsync(repos.Checkout, "update-ref", GitCheckout.UpstreamRef, "refs/remotes/origin/main");
        var byUrl = await CheckoutRevision.JudgeAsync(repos.Checkout, repos.Remote, "main", CancellationToken.None);
        Assert.True(byUrl.Source is not null, byUrl.Why);
        Assert.Equal(head, byUrl.Source.Revision);

        // A partial clone (objects fetched lazily with the checkout's own helpers): not judged.
        await GitRepos.GitAsync(repos.Checkout, "config", "extensions.partialClone", "origin");
        Assert.Contains("is a partial clone: not judged", (await CheckoutRevision.JudgeAsync(repos.Checkout, "origin", "main", CancellationToken.None)).Why, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AChangedFile_AnIgnoredOne_AMissingOne_AModeChanged_ALocalCommit_AreNoCommit()
    {
        var (repos, head) = await CheckoutAsync();
        using var _ = repos;
        async Task<string> WhyAsync() => (await CheckoutRevision.JudgeAsync(repos.Checkout, "origin", "main", CancellationToken.None)).Why ?? "(a revision)";

        await File.AppendAllTextAsync(Path.Combine(repos.Checkout, "base/etc/motd"), "changed\n");
        Assert.Equal($"{repos.Checkout} is not commit {head[..12]}: base/etc/motd differs from the commit", await WhyAsync());
        await GitRepos.GitAsync(repos.Checkout, "checkout", "--quiet", "--", "base/etc/motd");

        // Ignored by git, yet a COPY of base/etc takes it: the tree is not the commit.
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, ".git/info/exclude"), "*.local\n");
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, "base/etc/site.local"), "secret\n");
        Assert.Equal($"{repos.Checkout} is not commit {head[..12]}: base/etc/site.local is not in the commit", await WhyAsync());
        File.Delete(Path.Combine(repos.Checkout, "base/etc/site.local"));

        File.SetUnixFileMode(Path.Combine(repos.Checkout, "run.sh"), (UnixFileMode)Convert.ToInt32("644", 8));
        Assert.Contains("run.sh differs from the commit", await WhyAsync(), StringComparison.Ordinal);
        File.SetUnixFileMode(Path.Combine(repos.Checkout, "run.sh"), (UnixFileMode)Convert.ToInt32("755", 8));

        File.Delete(Path.Combine(repos.Checkout, "latest")); // the link goes
        Assert.Contains("latest is missing", await WhyAsync(), StringComparison.Ordinal);
        await GitRepos.GitAsync(repos.Checkout, "checkout", "--quiet", "--", "latest");
        Assert.Equal("(a revision)", await WhyAsync());

        // A commit made here and never pushed: not the remote's.
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, "base/etc/motd"), "local\n");
        await GitRepos.GitAsync(repos.Checkout, "-c", "user.name=A", "-c", "user.email=a@example.org", "commit", "--quiet", "-am", "hotfix");
        Assert.Contains("is not on origin/main (a local commit)", await WhyAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheCheckoutsOwnFiltersAndHooks_AreNeverRun()
    {
        var (repos, head) = await CheckoutAsync();
        using var _ = repos;
        // A checkout whose configuration names programs: a clean filter for every file (git status runs it for a file
        // whose stat data the index does not match: checked to run below, so the test can fail) and a hook. None may run.
        var marker = repos["ran"];
        await GitRepos.GitAsync(repos.Checkout, "config", "filter.pwn.clean", $"sh -c 'touch {marker}; cat'");
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, ".git/info/attributes"), "* filter=pwn\n");
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, ".git/hooks/post-checkout"), $"#!/bin/sh\ntouch {marker}\n");
        File.SetUnixFileMode(Path.Combine(repos.Checkout, ".git/hooks/post-checkout"), (UnixFileMode)Convert.ToInt32("755", 8));
        File.SetLastWriteTimeUtc(Path.Combine(repos.Checkout, "base/etc/motd"), DateTime.UtcNow.AddMinutes(1)); // stat data stale

        var judged = await CheckoutRevision.JudgeAsync(repos.Checkout, "origin", "main", CancellationToken.None);
        Assert.Equal(head, judged.Source?.Revision);
        Assert.False(File.Exists(marker), "a program the checkout's configuration names was run");

        // The control: git status on that checkout does run the filter (what the judge must not call).
        await GitRepos.GitAsync(repos.Checkout, "status", "--porcelain");
        Assert.True(File.Exists(marker), "the test's filter did not run under git status: the test proves nothing");
    }

    [Fact]
    public async Task ADotGitThatIsNoDirectory_IsNotJudged()
    {
        var (repos, _) = await CheckoutAsync();
        using var __ = repos;
        // A work tree whose .git is a file naming a git directory elsewhere (as `git worktree add` makes).
        await GitRepos.GitAsync(repos.Checkout, "worktree", "add", "--quiet", repos["second"], "HEAD");
        var judged = await CheckoutRevision.JudgeAsync(repos["second"], "origin", "main", CancellationToken.None);
        Assert.Null(judged.Source);
        Assert.Equal($"{repos["second"]} has no .git directory of its own (not a checkout, a linked work tree, or a .git file or link)", judged.Why);
    }
}
