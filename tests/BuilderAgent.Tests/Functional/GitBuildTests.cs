using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// `build --from-git` on a copy of Toolforge's real image tree, pushed to a bare repository made by the test, built
/// by the private dockerd through a proxy that counts every build call reaching the Engine API (the tree made
/// buildable here as <see cref="RealTree"/> says).
/// </summary>
[Collection("docker")]
public sealed class GitBuildTests(DockerFixture fx)
{
    private readonly string _prefix = "g" + Guid.NewGuid().ToString("N")[..8];

    private NamingOptions Naming => new(fx.Registry.Address, _prefix, "testing");

    private Task<GitRepos> SetUpAsync() => RealTree.SetUpAsync(fx, Naming);

    private async Task<ProcessResult> FromGitAsync(GitRepos repos, EngineApiCounter engine) =>
        await Run.DotnetToolAsync("toolforge-builder-agent",
            ["build", "--from-git", "--repo", repos.Checkout, "--docker-registry", fx.Registry.Address, "--image-prefix", _prefix, "--docker-host", engine.Endpoint],
            TimeSpan.FromMinutes(15));

    /// <summary>Builds from git and asserts that the Engine API got exactly one build call for each expected image and no other.</summary>
    private async Task<ProcessResult> AssertBuildsExactlyAsync(GitRepos repos, IEnumerable<string> expectedPaths)
    {
        await using var engine = new EngineApiCounter(fx.Docker.Socket);
        var r = await FromGitAsync(repos, engine);
        Assert.True(r.ExitCode == 0, r.ToString());
        var expected = expectedPaths.Select(p => Naming.FullName(p)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, engine.BuildTags.Order(StringComparer.Ordinal));
        return r;
    }

    private async Task<JsonObject> LabelsAsync(string path) =>
        JsonNode.Parse(await fx.Docker.DockerAsync($"inspect -f '{{{{json .Config.Labels}}}}' {Naming.FullName(path)}"))!.AsObject();

    [Fact]
    public async Task ALeafCommit_BuildsExactlyThatImage_LabelledWithTheCommit_ThenNothing()
    {
        using var repos = await SetUpAsync();
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "python311-sssd/web/Dockerfile.template"), "RUN touch /leaf-change\n");
        var commit = await repos.CommitAsync("python311-sssd/web: a leaf change");
        var started = DateTimeOffset.UtcNow.AddSeconds(-1);

        var r = await AssertBuildsExactlyAsync(repos, ["python311-sssd/web"]);
        Assert.Contains("  python311-sssd/web: changed python311-sssd/web/Dockerfile.template", r.Stdout, StringComparison.Ordinal);
        var labels = await LabelsAsync("python311-sssd/web");
        Assert.Equal(commit, (string?)labels[Build.OciLabels.Revision]);
        Assert.Equal(repos.Remote, (string?)labels[Build.OciLabels.Source]);
        var created = DateTimeOffset.Parse((string)labels[Build.OciLabels.Created]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(created, started, DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal("", await fx.Docker.DockerAsync($"run --rm --network none {Naming.FullName("python311-sssd/web")} sh -c 'test -f /leaf-change'"));

        // Built: the checkout remembers it, and the next run has nothing to build.
        Assert.Equal(commit, (await GitRepos.GitAsync(repos.Checkout, "rev-parse", GitCheckout.BuiltRef)).Trim());
        var again = await AssertBuildsExactlyAsync(repos, []);
        Assert.Contains("nothing to build", again.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASeriesBaseCommit_BuildsExactlyThatLineage()
    {
        using var repos = await SetUpAsync();
        var graph = ImageRepository.Open(repos.Checkout).Graph(Naming);
        await File.AppendAllTextAsync(Path.Combine(repos.Work, "trixie-sssd/tools.sources"), "# a series base change\n");
        await repos.CommitAsync("trixie-sssd: the Toolforge apt source changes");
        var lineage = graph.Lineage("trixie-sssd");
        Assert.True(lineage.Count > 5, string.Join(",", lineage)); // a real series, not a leaf
        await AssertBuildsExactlyAsync(repos, lineage);
    }

    [Fact]
    public async Task ASharedIncludeCommit_BuildsEveryImageThatIncludesIt()
    {
        using var repos = await SetUpAsync();
        var importers = Directory.EnumerateFiles(repos.Work, "Dockerfile.template", SearchOption.AllDirectories)
            .Where(f => File.ReadAllText(f).Contains("import 'macros.jinja2'", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(repos.Work, Path.GetDirectoryName(f)!)).ToList();
        var macros = Path.Combine(repos.Work, "macros.jinja2");
        await File.WriteAllTextAsync(macros, (await File.ReadAllTextAsync(macros)).Replace("apt-get clean && apt-get update", "apt-get update", StringComparison.Ordinal));
        await repos.CommitAsync("macros: apt_install no longer cleans first");
        await AssertBuildsExactlyAsync(repos, importers);
    }
}
