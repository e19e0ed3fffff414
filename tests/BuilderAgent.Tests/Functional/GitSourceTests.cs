using System.Net;
using System.Net.Sockets;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// Git as the source of truth, against real git: a bare repository made by the test holding a copy of Toolforge's
/// real image tree, a maintainer's clone that commits and pushes, and the builder's checkout.
/// </summary>
public sealed partial class GitSourceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static GitCheckout Checkout(GitRepos repos) => new(repos.Checkout, "origin", "main", Timeout);

    private static async Task<(GitUpdate Update, ChangeSelection Selection)> SyncAsync(GitRepos repos, string? since = null)
    {
        var checkout = Checkout(repos);
        var update = await GitSync.UpdateAsync(checkout, since, CancellationToken.None);
        var selection = ChangeSelector.Select(update.Changed, ImageRepository.Open(repos.Checkout).Graph(new NamingOptions()));
        return (update, selection);
    }

    private static Task<ProcessResult> FromGitAsync(string checkout, params string[] more) =>
        Run.DotnetToolAsync("toolforge-builder-agent", ["build", "--from-git", "--repo", checkout, "--docker-host", "unix:///nonexistent/docker.sock", .. more], TimeSpan.FromMinutes(2));

    [Fact]
    public async Task ALeafCommit_FastForwards_AndSelectsThatImage_ThenNothingUntilTheNextCommit()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        var before = await repos.HeadAsync(repos.Checkout);
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "python311-sssd/web/Dockerfile.template"), "RUN touch /leaf\n");
        var leaf = await repos.CommitAsync("python311 web: a leaf change");

        var (update, selection) = await SyncAsync(repos);
        Assert.Equal((before, leaf, before), (update.Before, update.After, update.Since));
        Assert.Equal(leaf, await repos.HeadAsync(repos.Checkout)); // fast-forwarded
        Assert.Equal(["python311-sssd/web/Dockerfile.template"], update.Changed);
        Assert.Equal(["python311-sssd/web"], selection.Paths);
        Assert.Equal(before, await Checkout(repos).BuiltAsync(CancellationToken.None)); // the baseline, until the build is done

        // Not built (a build that failed, Docker down): the same changes again.
        var (_, retried) = await SyncAsync(repos);
        Assert.Equal(["python311-sssd/web"], retried.Paths);

        // Marked built: the next fetch with no new commit selects nothing; --since counts again from where it says.
        await Checkout(repos).MarkBuiltAsync(leaf, CancellationToken.None);
        var (again, none) = await SyncAsync(repos);
        Assert.Equal((leaf, leaf), (again.Since, again.After));
        Assert.Empty(none.Images);
        var (_, fromBefore) = await SyncAsync(repos, since: before);
        Assert.Equal(["python311-sssd/web"], fromBefore.Paths);
    }

    [Fact]
    public async Task SeveralCommitsSinceTheLastBuild_AreSelectedTogether_SeriesBaseAndSharedInclude()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        var graph = ImageRepository.Open(repos.Work).Graph(new NamingOptions());
        await Checkout(repos).MarkBuiltAsync(await repos.HeadAsync(repos.Checkout), CancellationToken.None);
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "trixie-sssd/Dockerfile.template"), "RUN touch /series\n");
        await repos.CommitAsync("trixie-sssd: a series base change");
        var (_, series) = await SyncAsync(repos);
        Assert.Equal(graph.Lineage("trixie-sssd"), series.Paths);

        // Not built (no MarkBuilt): the next commit's changes add to the ones still waiting.
        File.WriteAllText(Path.Combine(repos.Work, "macros.jinja2"), File.ReadAllText(Path.Combine(repos.Work, "macros.jinja2")).Replace("apt-get clean && apt-get update", "apt-get update", StringComparison.Ordinal));
        await repos.CommitAsync("macros: one apt-get clean less");
        var (update, all) = await SyncAsync(repos);
        Assert.Equal(["macros.jinja2", "trixie-sssd/Dockerfile.template"], update.Changed.Order(StringComparer.Ordinal));
        Assert.Equal(graph.TopologicalOrder(graph.Images.Select(i => i.Path).ToHashSet(StringComparer.Ordinal)), all.Paths);
    }

    [Fact]
    public async Task ADirtyCheckout_IsRefused_InOneLineNamingTheFiles_AndNothingMoves()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        var head = await repos.HeadAsync(repos.Checkout);
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "trixie/Dockerfile.template"), "RUN true\n");
        await repos.CommitAsync("trixie: change");
        await File.AppendAllTextAsync(Path.Combine(repos.Checkout, "bookworm-sssd/tools.sources"), "# edited by hand\n");
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, "notes\u001b[31mred.txt"), "x");

        var r = await FromGitAsync(repos.Checkout);
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("2 uncommitted change(s): M bookworm-sssd/tools.sources, ?? notes\\x1b[31mred.txt", line, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(head, await repos.HeadAsync(repos.Checkout));
    }

    [Fact]
    public async Task ADivergedCheckout_IsRefused_NamingItsLocalCommits()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "trixie/Dockerfile.template"), "RUN true\n");
        await repos.CommitAsync("trixie: upstream change");
        await File.AppendAllTextAsync(Path.Combine(repos.Checkout, "trixie-web/Dockerfile.template"), "RUN true\n");
        await GitRepos.GitAsync(repos.Checkout, "-c", "user.name=Someone On The Builder", "-c", "user.email=x@example.org", "commit", "--quiet", "-am", "hotfix made on the builder host");
        var local = (await GitRepos.GitAsync(repos.Checkout, "rev-parse", "--short", "HEAD")).Trim();

        var r = await FromGitAsync(repos.Checkout);
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"has diverged from origin/main: 1 local commit(s) not on the remote: {local} hotfix made on the builder host", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadInput_IsOneLineNamingTheFlag_ExitTwo()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        foreach (var (args, says) in new[]
        {
            (new[] { "--since", "no-such-commit" }, "--since: \"no-such-commit\" names no commit"),
            (new[] { "--branch", "-evil" }, "--branch: \"-evil\" is not a branch name"),
            (new[] { "--remote", "ext::sh -c touch% /tmp/pwned" }, "--remote: "),
            (new[] { "python311-sssd/web" }, "--from-git chooses the images from the commits: name no image with it"),
        })
        {
            var r = await FromGitAsync(repos.Checkout, args);
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains(says, Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        }

        var noImage = await Run.DotnetToolAsync("toolforge-builder-agent", ["build", "--repo", repos.Checkout], TimeSpan.FromMinutes(1));
        Assert.Equal(2, noImage.ExitCode);
        Assert.Contains("name at least one image (or use --from-git)", noImage.Stderr, StringComparison.Ordinal);
        var sinceAlone = await Run.DotnetToolAsync("toolforge-builder-agent", ["build", "trixie", "--since", "HEAD", "--repo", repos.Checkout], TimeSpan.FromMinutes(1));
        Assert.Equal(2, sinceAlone.ExitCode);
        Assert.Contains("--since, --remote and --branch go with --from-git", sinceAlone.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARemoteThatIsGone_OrNotACheckout_IsOneLine_ExitOne()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        Directory.Move(repos.Remote, repos["moved.git"]);
        var r = await FromGitAsync(repos.Checkout);
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("git fetch in ", line, StringComparison.Ordinal);
        Assert.Contains("does not appear to be a git repository", line, StringComparison.Ordinal);

        using var plain = new TempDir();
        var notGit = await FromGitAsync(plain.Path);
        Assert.Equal(1, notGit.ExitCode);
        Assert.Contains("is not a git checkout", notGit.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARemoteThatNeverAnswers_IsKilledAtTheDeadline()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = silent.AcceptSocketAsync();
        var checkout = new GitCheckout(repos.Checkout, $"git://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/images.git", "main", TimeSpan.FromSeconds(2));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<GitException>(() => GitSync.UpdateAsync(checkout, null, CancellationToken.None));
        Assert.Contains("git fetch in ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("did not finish within 00:00:02; killed", ex.Message, StringComparison.Ordinal);
        Assert.True(accepted.IsCompleted, "git never connected: the deadline was not what stopped it");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), sw.Elapsed.ToString());
        (await accepted).Dispose();
    }

    [Fact]
    public async Task GitOutputPastItsBound_IsRefused_AndTheCommandKilled()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository);
        var big = new byte[GitRunner.MaxOutput + 1024];
        Random.Shared.NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(repos.Work, "big.bin"), big);
        await repos.CommitAsync("a blob larger than the output bound");
        var blob = (await GitRepos.GitAsync(repos.Work, "rev-parse", "HEAD:big.bin")).Trim();
        var git = new GitRunner(repos.Work, Timeout);
        var ex = await Assert.ThrowsAsync<GitException>(() => git.RunAsync(["cat-file", "blob", blob], CancellationToken.None));
        Assert.Contains($"git cat-file in {repos.Work}: printed more than {GitRunner.MaxOutput} bytes; refused", ex.Message, StringComparison.Ordinal);
        var small = await git.RunAsync(["cat-file", "-s", blob], CancellationToken.None);
        Assert.Equal(big.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), small.Stdout.Trim());
    }
}
