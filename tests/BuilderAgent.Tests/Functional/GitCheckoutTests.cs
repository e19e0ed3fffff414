using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;
using MsOptions = Microsoft.Extensions.Options.Options;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// The checkout a build from git works in, with real git (no image is built here: the commits change no image): the
/// daemon's own checkout cloned where its unit may write, one updater of a checkout at a time (the daemon's poll or a
/// `build --from-git`), and the index.lock a killed git leaves behind.
/// </summary>
public sealed class GitCheckoutTests
{
    private sealed class Poller : IDisposable
    {
        private readonly BuildLane _lane = new();
        private readonly Docker.BuilderDocker _docker = new("unix:///nonexistent/docker.sock", TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        public Poller(GitRepos repos, GitOptions git)
        {
            State = new AgentState(TimeProvider.System, new ListLogger<AgentState>());
            Service = new GitPollService(_docker, _lane, State, MsOptions.Create(new BuilderOptions { Repository = repos.Checkout }), MsOptions.Create(git), TimeProvider.System, Logger);
        }

        public AgentState State { get; }

        public ListLogger<GitPollService> Logger { get; } = new();

        public GitPollService Service { get; }

        public string Log => string.Join("\n", Logger.Lines.Select(l => l.Message));

        /// <summary>One poll as the timer runs it (a problem is said on the check, not thrown).</summary>
        public async Task<CheckResult> PollAsync()
        {
            try
            {
                await Service.PollOnceAsync(CancellationToken.None);
            }
            catch (GitException ex)
            {
                return new CheckResult { State = CheckState.Warning, Message = ex.Message };
            }

            return State.GetCheck(GitPollService.Check)!;
        }

        public void Dispose()
        {
            _docker.Dispose();
            _lane.Dispose();
        }
    }

    private static void OldIndexLock(string gitDirectory, TimeSpan age)
    {
        var path = Path.Combine(gitDirectory, "index.lock");
        File.WriteAllText(path, string.Empty);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
    }

    [Fact]
    public async Task The_daemons_own_checkout_is_cloned_at_the_first_poll_and_a_stale_index_lock_there_is_cleared_but_a_fresh_one_is_not()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.Images);
        Directory.CreateDirectory(repos["state"]);
        var own = Path.Combine(repos["state"], "toollabs-images");
        var git = new GitOptions { Remote = "file://" + repos.Remote, Checkout = own + "/", PollInterval = TimeSpan.FromMinutes(5), CommandTimeout = TimeSpan.FromMinutes(1) };
        Assert.Empty(git.Validate("Builder:Git")); // a checkout not there yet is fine: it is cloned
        using var poller = new Poller(repos, git);

        var first = await poller.PollAsync();
        Assert.Equal(CheckState.Ok, first.State);
        Assert.Contains($"git: cloned file://{repos.Remote} main into {own}", poller.Log, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(own, ".git", GitCheckout.ClonedMarker)));
        Assert.False(Directory.Exists(own + ".cloning")); // beside it, not inside it (the configured path ended with a slash)
        Assert.Equal(await repos.HeadAsync(repos.Work), await repos.HeadAsync(own));

        // A git killed in the daemon's own checkout two command timeouts ago: removed, said, and the poll goes on.
        OldIndexLock(Path.Combine(own, ".git"), TimeSpan.FromMinutes(2));
        await File.WriteAllTextAsync(Path.Combine(repos.Work, "NOTES.txt"), "a change no image uses\n");
        var commit = await repos.CommitAsync("notes");
        var second = await poller.PollAsync();
        Assert.Equal(CheckState.Ok, second.State);
        Assert.Contains("nothing to build", second.Message, StringComparison.Ordinal);
        Assert.Contains($"removed {own}/.git/index.lock, left 2 min ago by a git command that was killed", poller.Log, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(own, ".git", "index.lock")));
        Assert.Equal(commit, await repos.HeadAsync(own));

        // One younger than a git command may run: a git may be running; named, left, nothing moved.
        OldIndexLock(Path.Combine(own, ".git"), TimeSpan.FromSeconds(5));
        await File.WriteAllTextAsync(Path.Combine(repos.Work, "NOTES.txt"), "another\n");
        await repos.CommitAsync("more notes");
        var third = await poller.PollAsync();
        Assert.Equal(CheckState.Warning, third.State);
        Assert.Contains($"{own}/.git/index.lock exists", third.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(own, ".git", "index.lock")));
        Assert.Equal(commit, await repos.HeadAsync(own));
    }

    [Fact]
    public async Task In_a_checkout_an_admin_may_work_in_an_old_index_lock_is_named_never_removed()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.Images);
        using var poller = new Poller(repos, new GitOptions { PollInterval = TimeSpan.FromMinutes(5), CommandTimeout = TimeSpan.FromMinutes(1) });
        OldIndexLock(Path.Combine(repos.Checkout, ".git"), TimeSpan.FromHours(3));
        var r = await poller.PollAsync();
        Assert.Equal(CheckState.Warning, r.State);
        Assert.Contains("remove the file if no git runs there", r.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(repos.Checkout, ".git", "index.lock")));
    }

    [Fact]
    public async Task While_one_updater_holds_the_checkout_the_daemons_poll_and_the_command_line_are_refused_in_one_line_and_go_on_after()
    {
        using var repos = await GitRepos.CreateAsync(Fixtures.Images);
        await File.WriteAllTextAsync(Path.Combine(repos.Work, "NOTES.txt"), "a change no image uses\n");
        var commit = await repos.CommitAsync("notes");
        using var poller = new Poller(repos, new GitOptions { PollInterval = TimeSpan.FromMinutes(5) });

        using (CheckoutLock.Take(repos.Checkout, Path.Combine(repos.Checkout, ".git")))
        {
            var polled = await poller.PollAsync();
            Assert.Equal(CheckState.Warning, polled.State);
            Assert.Contains("is being updated or built from git by another process", polled.Message, StringComparison.Ordinal);

            var cli = await Run.DotnetToolAsync("toolforge-builder-agent", ["build", "--from-git", "--repo", repos.Checkout], TimeSpan.FromMinutes(2));
            Assert.Equal(1, cli.ExitCode);
            var line = Assert.Single(cli.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("is being updated or built from git by another process", line, StringComparison.Ordinal);
            Assert.NotEqual(commit, await repos.HeadAsync(repos.Checkout)); // nothing moved under the holder
        }

        var after = await poller.PollAsync();
        Assert.Equal(CheckState.Ok, after.State);
        Assert.Equal(commit, await repos.HeadAsync(repos.Checkout));
    }
}
