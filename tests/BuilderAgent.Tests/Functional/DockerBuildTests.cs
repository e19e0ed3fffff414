using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>One private dockerd and one docker-registry for every test that builds (they run one at a time).</summary>
public sealed class DockerFixture : IAsyncLifetime
{
    public PrivateDockerd Docker { get; private set; } = null!;

    public PrivateRegistry Registry { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Docker = await PrivateDockerd.StartAsync();
        Registry = await PrivateRegistry.StartAsync(Docker.NetworkNamespace);
    }

    public async Task DisposeAsync()
    {
        await Registry.DisposeAsync();
        await Docker.DisposeAsync();
    }
}

/// <summary>The builder daemon (as a process) serving a coordinator from a repository copy, started and connected.</summary>
internal static class ServingBuilder
{
    /// <summary>Starts `serve` for <paramref name="repo"/> and waits until its command stream is open; returns it and its image prefix.</summary>
    /// <param name="repository">The image repository, when not <paramref name="repo"/> itself (where the daemon's own files go).</param>
    public static async Task<(BackgroundProcess Daemon, string Prefix)> StartAsync(CoordinatorHarness coordinator, DockerFixture fx, TempDir repo, string? repository = null)
    {
        const string builderNode = CoordinatorHarness.Builder;
        var prefix = "c" + Guid.NewGuid().ToString("N")[..8];
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["Log"] = new System.Text.Json.Nodes.JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["Port"] = 0 },
            ["Coordinator"] = coordinator.AgentSection(builderNode),
            ["Builder"] = new System.Text.Json.Nodes.JsonObject
            {
                ["Repository"] = repository ?? repo.Path,
                ["Registry"] = fx.Registry.Address,
                ["ImagePrefix"] = prefix,
                ["DockerEndpoint"] = fx.Docker.Endpoint,
                ["DockerConfig"] = repo["no-docker-config.json"],
                ["Promotion"] = new System.Text.Json.Nodes.JsonObject { ["StateFile"] = repo["state/verified.json"] },
            },
        };
        await File.WriteAllTextAsync(repo["builder.json"], config.ToJsonString());
        var daemon = BackgroundProcess.StartTool("toolforge-builder-agent", ["serve", "--config", repo["builder.json"]]);
        var viewer = coordinator.AdminClient(CoordinatorHarness.Viewer);
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            try
            {
                return viewer.GetNode(new Contracts.V1.GetNodeRequest { Name = builderNode }).Summary.Agents.Any(a => a.Kind == Contracts.V1.AgentKind.Builder && a.CommandsConnected);
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30)), "the builder never connected: " + daemon.Output);
        return (daemon, prefix);
    }
}

[CollectionDefinition("docker")]
public sealed class DockerCollection : ICollectionFixture<DockerFixture>;

/// <summary>Builds against a real dockerd and pushes to a real docker-registry, both on this machine.</summary>
[Collection("docker")]
public sealed class DockerBuildTests(DockerFixture fx)
{
    private readonly string _prefix = "t" + Guid.NewGuid().ToString("N")[..8];

    private Task<ProcessResult> Builder(string repo, params string[] args) =>
        Run.DotnetToolAsync("toolforge-builder-agent",
            [.. args, "--repo", repo, "--docker-registry", fx.Registry.Address, "--image-prefix", _prefix, "--docker-host", fx.Docker.Endpoint],
            TimeSpan.FromMinutes(5));

    private string Name(string path, string tag = "testing") => $"{fx.Registry.Address}/{_prefix}-{path.Replace('/', '-')}:{tag}";

    private static List<string> BuiltInOrder(string stdout) =>
        stdout.Split('\n').Where(l => l.Contains("] built ", StringComparison.Ordinal))
            .Select(l => l[1..l.IndexOf(']', StringComparison.Ordinal)]).ToList();

    private static void AssertParentsFirst(List<string> built)
    {
        foreach (var (image, i) in built.Select((b, i) => (b, i)))
        {
            var parent = image.Contains('/', StringComparison.Ordinal) ? image[..image.LastIndexOf('/')] : null;
            if (parent is not null && built.Contains(parent))
            {
                Assert.True(built.IndexOf(parent) < i, $"{parent} built after {image}: {string.Join(", ", built)}");
            }
        }
    }

    [Fact]
    public async Task BuildPush_OfAMiddleImage_BuildsExactlyItsAncestorsAndDescendants_InOrder_AndPushesThem()
    {
        using var repo = Fixtures.CopyRepository();
        var r = await Builder(repo.Path, "build", "base-a/tools", "--push");
        Assert.True(r.ExitCode == 0, r.ToString());
        var built = BuiltInOrder(r.Stdout);
        Assert.Equal(["base-a", "base-a/tools", "base-a/tools/extra"], built.Order(StringComparer.Ordinal));
        AssertParentsFirst(built);
        Assert.DoesNotContain("[base-a/web]", r.Stdout, StringComparison.Ordinal); // a sibling branch is not touched

        var catalog = JsonNode.Parse(await fx.Registry.GetAsync("/v2/_catalog"))!["repositories"]!.AsArray().Select(x => (string)x!).ToList();
        foreach (var image in new[] { "base-a", "base-a-tools", "base-a-tools-extra" })
        {
            Assert.Contains($"{_prefix}-{image}", catalog);
            var tags = JsonNode.Parse(await fx.Registry.GetAsync($"/v2/{_prefix}-{image}/tags/list"))!["tags"]!.AsArray().Select(x => (string)x!);
            Assert.Contains("testing", tags);
        }

        Assert.DoesNotContain($"{_prefix}-base-a-web", catalog);
        Assert.Matches(@"pushed\s+\S+\s+sha256:[0-9a-f]{64}", r.Stdout);

        // The image is really what the template says: busybox, the stamp, the copied files.
        var stamps = await fx.Docker.DockerAsync($"run --rm --network none {Name("base-a/tools/extra")} cat /etc/fixture-stamps /etc/extra /etc/tools/a.conf");
        Assert.Equal("base-a=yes\ntools=base-a/tools\nextra=yes\n1:one\n2:two\n3:three\nfixture a\n", stamps);
    }

    [Fact]
    public async Task FailingImage_SkipsOnlyItsDescendants_IndependentBranchBuilds_NothingPushed_ExitOne()
    {
        using var repo = Fixtures.CopyRepository();
        await File.AppendAllTextAsync(repo["base-a/web/Dockerfile.template"], "\nRUN echo about to fail && false\n");
        var r = await Builder(repo.Path, "build", "base-a", "base-b", "--push");
        Assert.Equal(1, r.ExitCode);
        var built = BuiltInOrder(r.Stdout);
        Assert.Equal(["base-a", "base-a/tools", "base-a/tools/extra", "base-b", "base-b/tools", "base-b/tools/cli"], built.Order(StringComparer.Ordinal));
        Assert.Contains("[base-a/web/app] skipped: parent base-a/web failed", r.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"\n\S+-base-a-web:testing\s+failed", r.Stdout);
        Assert.Contains("base-a/web: failed: build of", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("returned a non-zero code", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("not pushing anything: 2 image(s) did not build", r.Stdout, StringComparison.Ordinal);
        var catalog = await fx.Registry.GetAsync("/v2/_catalog");
        Assert.DoesNotContain(_prefix, catalog, StringComparison.Ordinal);

        // --push-successful pushes what built.
        var again = await Builder(repo.Path, "build", "base-b", "base-a", "--push", "--push-successful");
        Assert.Equal(1, again.ExitCode);
        catalog = await fx.Registry.GetAsync("/v2/_catalog");
        Assert.Contains($"{_prefix}-base-b-tools-cli", catalog, StringComparison.Ordinal);
        Assert.DoesNotContain($"{_prefix}-base-a-web\"", catalog, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecondRun_BuildsNothing_AndAChangedCopiedFile_RebuildsOnlyThatImageAndItsDescendants()
    {
        using var repo = Fixtures.CopyRepository();
        var first = await Builder(repo.Path, "build", "base-a", "--jobs", "2");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(5, BuiltInOrder(first.Stdout).Count);

        var second = await Builder(repo.Path, "build", "base-a");
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Empty(BuiltInOrder(second.Stdout));
        Assert.Contains("nothing to build: every image is unchanged", second.Stdout, StringComparison.Ordinal);

        var plan = await Builder(repo.Path, "plan", "base-a", "-o", "json");
        Assert.All(JsonNode.Parse(plan.Stdout)!["images"]!.AsArray(), i => Assert.True((bool)i!["skip"]!));

        await File.WriteAllTextAsync(repo["base-a/tools/motd"], "a new motd\n");
        var third = await Builder(repo.Path, "build", "base-a");
        Assert.True(third.ExitCode == 0, third.ToString());
        Assert.Equal(["base-a/tools", "base-a/tools/extra"], BuiltInOrder(third.Stdout));
        Assert.Equal("a new motd\n", await fx.Docker.DockerAsync($"run --rm --network none {Name("base-a/tools/extra")} cat /etc/motd"));

        // --force rebuilds regardless.
        var forced = await Builder(repo.Path, "build", "base-a/tools", "--single", "--force");
        Assert.Equal(["base-a/tools"], BuiltInOrder(forced.Stdout));
    }

    [Fact]
    public async Task RenderedDockerfiles_AreNeverWrittenIntoTheSourceTree()
    {
        using var repo = Fixtures.CopyRepository();
        var before = Directory.EnumerateFiles(repo.Path, "*", SearchOption.AllDirectories).Order().ToList();
        var r = await Builder(repo.Path, "build", "base-b");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(before, Directory.EnumerateFiles(repo.Path, "*", SearchOption.AllDirectories).Order().ToList());
    }

    [Fact]
    public async Task PushToARegistryThatIsDown_IsAFailure()
    {
        using var repo = Fixtures.CopyRepository();
        var closed = Peer.FreePort();
        var r = await Run.DotnetToolAsync("toolforge-builder-agent",
            ["build", "base-b", "--single", "--push", "--repo", repo.Path, "--docker-registry", $"127.0.0.1:{closed}", "--image-prefix", _prefix, "--docker-host", fx.Docker.Endpoint],
            TimeSpan.FromMinutes(5));
        Assert.Equal(1, r.ExitCode);
        Assert.Matches(@"base-b:testing\s+push-failed", r.Stdout);
    }

    [Fact]
    public async Task Clean_RemovesExitedContainersAndDanglingImages_AndNothingElse()
    {
        using var repo = Fixtures.CopyRepository();
        var r = await Builder(repo.Path, "build", "base-b", "--single");
        Assert.True(r.ExitCode == 0, r.ToString());
        var image = Name("base-b");
        // An exited container, a running one, a dangling image (a tag moved away from it) and a tagged image.
        var exited = (await fx.Docker.DockerAsync($"run -d --network none {image} true")).Trim();
        await fx.Docker.DockerAsync($"wait {exited}");
        var running = (await fx.Docker.DockerAsync($"run -d --network none {image} sleep 300")).Trim();
        using var ctx = new TempDir();
        await File.WriteAllTextAsync(ctx["Dockerfile"], $"FROM {image}\nRUN echo one > /one\n");
        await fx.Docker.DockerAsync($"build -q -t {_prefix}-dangle {ctx.Path}");
        var danglingId = (await fx.Docker.DockerAsync($"images -q {_prefix}-dangle")).Trim();
        await File.WriteAllTextAsync(ctx["Dockerfile"], $"FROM {image}\nRUN echo two > /two\n");
        await fx.Docker.DockerAsync($"build -q -t {_prefix}-dangle {ctx.Path}");

        var clean = await Run.DotnetToolAsync("toolforge-builder-agent", ["clean", "--docker-host", fx.Docker.Endpoint]);
        Assert.True(clean.ExitCode == 0, clean.ToString());
        var all = await fx.Docker.DockerAsync("ps -a -q --no-trunc");
        Assert.DoesNotContain(exited, all, StringComparison.Ordinal);
        Assert.Contains(running, all, StringComparison.Ordinal);
        var images = await fx.Docker.DockerAsync("images -a -q");
        Assert.DoesNotContain(danglingId, images, StringComparison.Ordinal);
        Assert.NotEmpty((await fx.Docker.DockerAsync($"images -q {image}")).Trim());
        Assert.NotEmpty((await fx.Docker.DockerAsync($"images -q {_prefix}-dangle")).Trim());
        await fx.Docker.DockerAsync($"rm -f {running}");
    }
}
