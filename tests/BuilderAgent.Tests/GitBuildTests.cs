using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// `build --from-git` on a copy of Toolforge's real image tree, pushed to a bare repository made by the test, built
/// by the private dockerd through a proxy that counts every build call reaching the Engine API. The real images need
/// Debian mirrors to build; here their external bases (docker-registry.wikimedia.org/...) are a busybox image with
/// apt-get, useradd and the like as no-op stand-ins, so every Dockerfile of the tree builds as written. The files the
/// reference copy lacks (shared/python/..., install-packages) are committed as placeholders; and every image of the
/// tree is first tagged as that stand-in, so a leaf finds its parent without the parent being built.
/// </summary>
[Collection("docker")]
public sealed class GitBuildTests(DockerFixture fx)
{
    private static readonly SemaphoreSlim StandInOnce = new(1, 1);
    private static bool _standInBuilt;

    private readonly string _prefix = "g" + Guid.NewGuid().ToString("N")[..8];

    private NamingOptions Naming => new(fx.Registry.Address, _prefix, "testing");

    private async Task<GitRepos> SetUpAsync()
    {
        var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository, AddWhatTheReferenceCopyLacks);
        await StandInBasesAsync();
        var graph = ImageRepository.Open(repos.Checkout).Graph(Naming);
        await Run.ShAsync($"for n in {string.Join(' ', graph.Images.Select(i => Naming.FullName(i.Path)))}; do docker -H {fx.Docker.Endpoint} tag tfa-standin:base \"$n\" || exit 1; done", TimeSpan.FromMinutes(2));
        return repos;
    }

    /// <summary>Placeholders for the COPY sources missing from the reference copy (it holds the templates, not every file).</summary>
    private static void AddWhatTheReferenceCopyLacks(string tree)
    {
        var graph = ImageRepository.Open(tree).Graph(new NamingOptions());
        foreach (var image in graph.Images)
        {
            foreach (var source in ChangeSelector.CopySources(image))
            {
                var path = Path.Combine(tree, source.Text);
                if (!File.Exists(path) && !Directory.Exists(path) && source.Text.IndexOfAny(['*', '?', '[']) < 0)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    File.WriteAllText(path, "#!/bin/sh\n# placeholder: this file is not in the reference copy of toollabs-images\n");
                }
            }
        }
    }

    private async Task StandInBasesAsync()
    {
        await StandInOnce.WaitAsync();
        try
        {
            if (_standInBuilt)
            {
                return;
            }

            using var ctx = new TempDir("standin");
            File.Copy("/bin/busybox", ctx["busybox"]);
            Directory.CreateDirectory(ctx["stubs"]);
            foreach (var tool in new[] { "apt-get", "groupadd", "useradd", "npm", "update-ca-certificates", "update-locale" })
            {
                await File.WriteAllTextAsync(ctx[$"stubs/{tool}"], "#!/bin/sh\nexit 0\n");
            }

            Directory.CreateDirectory(ctx["etc"]);
            await File.WriteAllTextAsync(ctx["etc/passwd"], "root:x:0:0:root:/root:/bin/sh\ntfb:x:61312:61312::/home/tfb:/bin/sh\n");
            await File.WriteAllTextAsync(ctx["etc/group"], "root:x:0:\ntfb:x:61312:\n");
            await File.WriteAllTextAsync(ctx["etc/ca-certificates.conf"], "mozilla/DST_Root_CA_X3.crt\n");
            await File.WriteAllTextAsync(ctx["Dockerfile"], """
                FROM scratch
                COPY busybox /bin/busybox
                RUN ["/bin/busybox", "--install", "-s", "/bin"]
                COPY etc/ /etc/
                COPY stubs/ /usr/local/bin/
                RUN chmod 0755 /usr/local/bin/* && mkdir -p /usr/bin /var/lib/apt/lists
                """);
            await fx.Docker.DockerAsync($"build -q -t tfa-standin:base {ctx.Path}");
            foreach (var external in new[] { "bookworm", "bullseye", "trixie" })
            {
                await fx.Docker.DockerAsync($"tag tfa-standin:base docker-registry.wikimedia.org/{external}:latest");
            }

            _standInBuilt = true;
        }
        finally
        {
            StandInOnce.Release();
        }
    }

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
