using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The image graph on Toolforge's real repository and on broken ones.</summary>
public sealed partial class GraphTests
{
    private static readonly NamingOptions Toolforge = new();

    [Fact]
    public void ReferenceRepository_FindsEveryImageAndParent()
    {
        var graph = ImageRepository.Open(Fixtures.ReferenceRepository).Graph(Toolforge);
        Assert.Equal(52, graph.Images.Count);
        Assert.Equal("python311-sssd/base", graph["python311-sssd/web"].ParentPath);
        Assert.Equal("bookworm-sssd", graph["python311-sssd/base"].ParentPath);
        Assert.Null(graph["bookworm-sssd"].ParentPath);
        Assert.Equal("docker-registry.wikimedia.org/bookworm:latest", graph["bookworm-sssd"].From);
        Assert.Equal("bullseye0/base", graph["bullseye0/build"].ParentPath);
        // Every FROM that follows the naming convention found its folder; the rest are external bases.
        foreach (var image in graph.Images)
        {
            Assert.True(image.ParentPath is not null || image.From.StartsWith("docker-registry.wikimedia.org/", StringComparison.Ordinal), image.Path);
        }

        Assert.Equal(["bookworm-sssd", "bullseye-sssd", "bullseye-standalone", "bullseye0/base", "trixie", "trixie-sssd"],
            graph.Roots.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("python311-sssd/web", "bookworm-sssd,python311-sssd/base,python311-sssd/web")]
    [InlineData("python311-sssd/base", "bookworm-sssd,python311-sssd/base,python311-sssd/web")]
    [InlineData("bullseye0/base", "bullseye0/base,bullseye0/build,bullseye0/run")]
    [InlineData("jdk17-sssd/web", "bullseye-sssd,jdk17-sssd/base,jdk17-sssd/web")]
    public void ReferenceRepository_PlanIsBuildPysLineage(string image, string expected)
    {
        var graph = ImageRepository.Open(Fixtures.ReferenceRepository).Graph(Toolforge);
        Assert.Equal(expected.Split(','), graph.Select([image], single: false));
        Assert.Equal([image], graph.Select([image], single: true));
    }

    [Fact]
    public void ReferenceRepository_RootSelection_ParentsComeBeforeChildren()
    {
        var graph = ImageRepository.Open(Fixtures.ReferenceRepository).Graph(Toolforge);
        var order = graph.Select(["bookworm-sssd"], single: false);
        Assert.Equal(12, order.Count); // bookworm-sssd, bookworm-web-sssd and five base/web pairs
        foreach (var (image, i) in order.Select((p, i) => (p, i)))
        {
            if (graph[image].ParentPath is { } parent)
            {
                Assert.True(order.ToList().IndexOf(parent) < i, $"{parent} must come before {image}");
            }
        }
    }

    private static async Task<ProcessResult> CliOnBrokenRepo(Action<TempDir> breakIt, params string[] args)
    {
        using var repo = new TempDir("images");
        Directory.CreateDirectory(repo["a"]);
        Directory.CreateDirectory(repo["a/b"]);
        File.WriteAllText(repo["a/Dockerfile.template"], "FROM scratch\n");
        File.WriteAllText(repo["a/b/Dockerfile.template"], "FROM {{registry}}/{{image_prefix}}-a:{{tag}}\n");
        breakIt(repo);
        return await Run.DotnetToolAsync("toolforge-builder-agent", [.. args, "--repo", repo.Path]);
    }

    [Fact]
    public void PlainDockerfile_IsAnImageToo()
    {
        using var repo = new TempDir("images");
        Directory.CreateDirectory(repo["root"]);
        Directory.CreateDirectory(repo["root/child"]);
        File.WriteAllText(repo["root/Dockerfile.template"], "FROM scratch\n");
        File.WriteAllText(repo["root/child/Dockerfile"], "FROM docker-registry.svc.toolforge.org/toolforge-root:testing\nRUN true\n");
        var graph = ImageRepository.Open(repo.Path).Graph(Toolforge);
        Assert.Equal("root", graph["root/child"].ParentPath);
    }

    [Fact]
    public void CopySources_AreFilesDirectoriesAndGlobs_ButNotOtherStagesOrUrls()
    {
        using var repo = new TempDir("images");
        Directory.CreateDirectory(repo["shared/etc"]);
        File.WriteAllText(repo["shared/etc/a.conf"], "a");
        File.WriteAllText(repo["shared/etc/b.conf"], "b");
        File.WriteAllText(repo["shared/x.txt"], "x");
        var dockerfile = "FROM scratch\nCOPY shared/etc /etc\nCOPY --chown=1:1 shared/*.txt \\\n  /x/\nCOPY --from=builder /out /out\nADD https://example.org/f /f\nCOPY [\"shared/etc/a.conf\", \"/a\"]\n";
        var inputs = BuildInputs.Collect(repo.Path, dockerfile, "img/Dockerfile");
        Assert.Equal(["shared/etc/a.conf", "shared/etc/b.conf", "shared/x.txt"], inputs.Files);
        var h1 = inputs.Hash("parent-1");
        Assert.NotEqual(h1, inputs.Hash("parent-2"));
        File.WriteAllText(repo["shared/etc/b.conf"], "changed");
        Assert.NotEqual(h1, BuildInputs.Collect(repo.Path, dockerfile, "img/Dockerfile").Hash("parent-1"));
    }
}
