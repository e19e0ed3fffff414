using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The daemon's git polling: off unless configured, its keys checked at start, and a real daemon building a pushed commit.</summary>
[Collection("docker")]
public sealed class GitPollTests(DockerFixture fx)
{
    private static readonly ConfigContract Contract = new("toolforge-builder-agent", path =>
    {
        var builder = AgentDaemon.CreateBuilder(DaemonInfo.BuilderAgent, path, BuilderDaemon.DefaultMetricsPort);
        BuilderDaemon.Configure(builder);
        return builder.Build();
    });

    private static bool Polls(JsonObject config) =>
        Contract.With(config, sp => sp.GetServices<IHostedService>().Any(s => s is GitPollService));

    [Fact]
    public void Polling_IsOffByDefault_AndOnWithAPollInterval()
    {
        using var repo = new TempDir();
        JsonObject Builder(JsonObject? git = null)
        {
            var b = new JsonObject { ["Repository"] = repo.Path };
            if (git is not null)
            {
                b["Git"] = git;
            }

            return new JsonObject { ["Builder"] = b };
        }

        Assert.False(Polls(Builder()));
        Assert.False(Polls(Builder(new JsonObject { ["Remote"] = "https://gitlab.example.org/images.git" })));
        Assert.True(Polls(Builder(new JsonObject { ["PollInterval"] = "00:05:00" })));
        var o = Contract.With(Builder(), BoundConfig.Bind<GitOptions>);
        Assert.Equal(("origin", "main", "", TimeSpan.Zero, true), (o.Remote, o.Branch, o.Checkout, o.PollInterval, o.Push));
    }

    [Fact]
    public async Task BadGitKeys_StopTheDaemon_InOneLineNamingTheKey()
    {
        using var repo = new TempDir();
        JsonObject With(JsonObject git) => new() { ["Builder"] = new JsonObject { ["Repository"] = repo.Path, ["Git"] = git } };
        var wrong = new List<string?>
        {
            await Contract.StopsWithOneLineAsync(With(new JsonObject { ["PollInterval"] = "00:00:00.2" }), "Builder:Git:PollInterval: must be 00:00:00 (do not poll) or between 00:00:01", ["serve"]),
            await Contract.StopsWithOneLineAsync(With(new JsonObject { ["Branch"] = "main..evil" }), "Builder:Git:Branch: \"main..evil\" is not a branch name", ["serve"]),
            await Contract.StopsWithOneLineAsync(With(new JsonObject { ["Remote"] = "ext::sh -c id" }), "Builder:Git:Remote: ", ["serve"]),
            await Contract.StopsWithOneLineAsync(With(new JsonObject { ["Checkout"] = repo["absent"] }), $"Builder:Git:Checkout: directory {repo["absent"]} does not exist", ["serve"]),
            await Contract.StopsWithOneLineAsync(With(new JsonObject { ["PolInterval"] = "00:01:00" }), "Builder:Git:PolInterval: unknown key", ["serve"]),
        };
        Assert.True(wrong.All(w => w is null), string.Join("\n", wrong.Where(w => w is not null)));
    }

    [Fact]
    public async Task TheDaemon_BuildsAPushedLeafCommit_Once_AndSaysWhenTheCheckoutIsDirty()
    {
        var prefix = "p" + Guid.NewGuid().ToString("N")[..8];
        var naming = new NamingOptions(fx.Registry.Address, prefix, "testing");
        using var repos = await RealTree.SetUpAsync(fx, naming);
        await using var engine = new EngineApiCounter(fx.Docker.Socket);
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Builder"] = new JsonObject
            {
                ["Repository"] = repos.Checkout,
                ["Registry"] = fx.Registry.Address,
                ["ImagePrefix"] = prefix,
                ["DockerEndpoint"] = engine.Endpoint,
                ["DockerConfig"] = repos["no-docker-config.json"],
                ["Git"] = new JsonObject { ["PollInterval"] = "00:00:01", ["Push"] = true },
            },
        };
        await File.WriteAllTextAsync(repos["builder.json"], config.ToJsonString());
        await using var daemon = BackgroundProcess.StartTool("toolforge-builder-agent", ["serve", "--config", repos["builder.json"]]);

        await File.AppendAllTextAsync(Path.Combine(repos.Work, "php84-sssd/web/Dockerfile.template"), "RUN touch /polled\n");
        var commit = await repos.CommitAsync("php84-sssd/web: a leaf change");
        Assert.True(await daemon.WaitForOutputAsync($"git: built 1 image(s) at {commit[..12]}", TimeSpan.FromMinutes(3)), daemon.Output);
        Assert.Equal([naming.FullName("php84-sssd/web")], engine.BuildTags);
        Assert.Contains("git: php84-sssd/web: changed php84-sssd/web/Dockerfile.template", daemon.Output, StringComparison.Ordinal);
        Assert.Contains($"{prefix}-php84-sssd-web", await fx.Registry.GetAsync("/v2/_catalog"), StringComparison.Ordinal); // pushed
        Assert.Equal(commit, (await GitRepos.GitAsync(repos.Checkout, "rev-parse", GitCheckout.BuiltRef)).Trim());

        // A dirty checkout: one warning naming the file, nothing built, and the all-clear once it is gone.
        await File.WriteAllTextAsync(Path.Combine(repos.Checkout, "stray.txt"), "left by hand");
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "php84-sssd/base/Dockerfile.template"), "RUN touch /second\n");
        var second = await repos.CommitAsync("php84-sssd/base: held back by the dirty checkout");
        Assert.True(await daemon.WaitForOutputAsync("1 uncommitted change(s): ?? stray.txt", TimeSpan.FromMinutes(1)), daemon.Output);
        Assert.Single(engine.BuildTags);
        File.Delete(Path.Combine(repos.Checkout, "stray.txt"));
        Assert.True(await daemon.WaitForOutputAsync($"git: built 2 image(s) at {second[..12]}", TimeSpan.FromMinutes(3)), daemon.Output);
        Assert.Contains("git: no longer: ", daemon.Output, StringComparison.Ordinal);
        Assert.Equal([naming.FullName("php84-sssd/web"), naming.FullName("php84-sssd/base"), naming.FullName("php84-sssd/web")], engine.BuildTags);
        Assert.True(1 == daemon.Output.Split('\n').Count(l => l.Contains("GitPollService[4205]: git: ", StringComparison.Ordinal) && l.Contains("uncommitted change(s)", StringComparison.Ordinal)), daemon.Output);
    }

    /// <summary>One poll at a time, called directly (no timer): a failed build is not retried for the same commit; the next commit builds both changes.</summary>
    [Fact]
    public async Task AFailedBuild_IsNotRetriedForTheSameCommit_TheNextCommitBuildsItsChangesAgain()
    {
        var prefix = "f" + Guid.NewGuid().ToString("N")[..8];
        var naming = new NamingOptions(fx.Registry.Address, prefix, "testing");
        using var repos = await RealTree.SetUpAsync(fx, naming);
        await using var engine = new EngineApiCounter(fx.Docker.Socket);
        using var docker = new Docker.BuilderDocker(engine.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(10));
        using var lane = new Build.BuildLane();
        var state = new Common.Reporting.AgentState(TimeProvider.System, new ListLogger<Common.Reporting.AgentState>());
        var logger = new ListLogger<GitPollService>();
        var poll = new GitPollService(docker, lane, state,
            Microsoft.Extensions.Options.Options.Create(new BuilderOptions { Repository = repos.Checkout, Registry = fx.Registry.Address, ImagePrefix = prefix }),
            Microsoft.Extensions.Options.Options.Create(new GitOptions { PollInterval = TimeSpan.FromMinutes(5), Push = false }),
            TimeProvider.System, logger);
        var web = naming.FullName("ruby33-sssd/web");

        await File.AppendAllTextAsync(Path.Combine(repos.Work, "ruby33-sssd/web/Dockerfile.template"), "RUN echo this build fails && false\n");
        var broken = await repos.CommitAsync("ruby33-sssd/web: a change that does not build");
        await poll.PollOnceAsync(CancellationToken.None);
        Assert.Equal([web], engine.BuildTags);
        Assert.Equal(Contracts.V1.CheckState.Warning, state.GetCheck(GitPollService.Check)!.State);
        Assert.Contains($"git: the build at {broken[..12]} failed: 1 of 1 image(s) failed", string.Join("\n", logger.Lines.Select(l => l.Message)), StringComparison.Ordinal);
        var baseline = await GitRepos.GitAsync(repos.Checkout, "rev-parse", GitCheckout.BuiltRef);

        await poll.PollOnceAsync(CancellationToken.None); // the same commit: not again
        Assert.Single(engine.BuildTags);
        Assert.Equal(baseline, await GitRepos.GitAsync(repos.Checkout, "rev-parse", GitCheckout.BuiltRef));

        var template = Path.Combine(repos.Work, "ruby33-sssd/web/Dockerfile.template");
        await File.WriteAllTextAsync(template, (await File.ReadAllTextAsync(template)).Replace("RUN echo this build fails && false\n", "RUN echo fixed\n", StringComparison.Ordinal));
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "ruby33-sssd/base/Dockerfile.template"), "RUN touch /base-change\n");
        var fixedCommit = await repos.CommitAsync("ruby33-sssd: fix web, change base");
        await poll.PollOnceAsync(CancellationToken.None);
        Assert.Equal([web, naming.FullName("ruby33-sssd/base"), web], engine.BuildTags);
        Assert.Equal(Contracts.V1.CheckState.Ok, state.GetCheck(GitPollService.Check)!.State);
        Assert.Equal(fixedCommit, (await GitRepos.GitAsync(repos.Checkout, "rev-parse", GitCheckout.BuiltRef)).Trim());
    }
}
