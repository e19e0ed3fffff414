using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>Which images a change rebuilds: the pure core, on Toolforge's real tree and on made-up graphs.</summary>
public sealed class ChangeSelectionTests
{
    private static readonly NamingOptions Toolforge = new();

    private static readonly Lazy<ImageGraph> Reference = new(() => ImageRepository.Open(Fixtures.ReferenceRepository).Graph(Toolforge));

    [Fact]
    public void ALeafTemplate_SelectsExactlyThatImage()
    {
        var s = ChangeSelector.Select(["python311-sssd/web/Dockerfile.template"], Reference.Value);
        var only = Assert.Single(s.Images);
        Assert.Equal("python311-sssd/web", only.Path);
        Assert.Equal(new ChangeReason(ChangeReasonKind.Folder, "python311-sssd/web/Dockerfile.template"), only.Reason);
        Assert.Empty(s.Unmatched);
    }

    [Fact]
    public void ASeriesBase_SelectsItsWholeLineage_ParentsFirst_DescendantsByParent()
    {
        var graph = Reference.Value;
        var s = ChangeSelector.Select(["bookworm-sssd/tools.sources"], graph);
        Assert.Equal(graph.Lineage("bookworm-sssd"), s.Paths);
        Assert.Equal(12, s.Images.Count);
        Assert.Equal(ChangeReasonKind.Folder, s.Images[0].Reason.Kind);
        foreach (var image in s.Images.Skip(1))
        {
            Assert.Equal(new ChangeReason(ChangeReasonKind.Parent, graph[image.Path].ParentPath!), image.Reason);
            Assert.True(s.Paths.ToList().IndexOf(graph[image.Path].ParentPath!) < s.Paths.ToList().IndexOf(image.Path));
        }
    }

    [Fact]
    public void TheSharedMacros_SelectEveryImageWhoseTemplateImportsThem()
    {
        var graph = Reference.Value;
        // Independently of the renderer: the templates that name macros.jinja2 in an import.
        var importers = graph.Images
            .Where(i => File.ReadAllText(Path.Combine(Fixtures.ReferenceRepository, i.Folder.DockerfilePath)).Contains("import 'macros.jinja2'", StringComparison.Ordinal))
            .Select(i => i.Path).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(importers);
        var s = ChangeSelector.Select(["macros.jinja2"], graph);
        Assert.Equal(importers, s.Paths.Order(StringComparer.Ordinal));
        Assert.All(s.Images, i => Assert.Contains(new ChangeReason(ChangeReasonKind.Include, "macros.jinja2"), i.DirectReasons));
    }

    [Fact]
    public void ASharedCopiedFile_SelectsTheImagesThatCopyIt_AndTheirDescendants()
    {
        var graph = Reference.Value;
        var copiers = graph.Images.Where(i => i.Dockerfile.Contains("COPY shared/etc/nsswitch.conf", StringComparison.Ordinal)).Select(i => i.Path).ToList();
        Assert.Equal(5, copiers.Count);
        var expected = copiers.SelectMany(graph.Lineage).ToHashSet(StringComparer.Ordinal);
        var s = ChangeSelector.Select(["shared/etc/nsswitch.conf"], graph);
        Assert.Equal(graph.TopologicalOrder(expected), s.Paths);
        Assert.All(copiers, c => Assert.Equal(new ChangeReason(ChangeReasonKind.Copy, "shared/etc/nsswitch.conf"), s.Images.Single(i => i.Path == c).Reason));
    }

    [Theory]
    [InlineData("README.md")]
    [InlineData("build.py")]
    [InlineData("bullseye0/.dockerignore")] // bullseye0 is no image: only its base/build/run are
    [InlineData("shared/etc/other.conf")]
    public void APathNoImageUses_SelectsNothing_AndIsNamed(string path)
    {
        var s = ChangeSelector.Select([path], Reference.Value);
        Assert.Empty(s.Images);
        Assert.Equal([path], s.Unmatched);
    }

    [Fact]
    public void SeveralChanges_AreMerged_EachImageOnce_WithEveryDirectReason()
    {
        var graph = Reference.Value;
        var s = ChangeSelector.Select(["python311-sssd/base/Dockerfile.template", "python311-sssd/web/Dockerfile.template", "python311-sssd/base/.dockerignore", "README.md"], graph);
        Assert.Equal(["python311-sssd/base", "python311-sssd/web"], s.Paths);
        Assert.Equal(2, s.Images[0].DirectReasons.Count);
        Assert.Equal(new ChangeReason(ChangeReasonKind.Folder, "python311-sssd/base/.dockerignore"), s.Images[0].Reason);
        Assert.Equal(["README.md"], s.Unmatched);
    }

    [Fact]
    public void NestedFolders_AFileBelongsToTheDeepestImage_NotToItsAncestors()
    {
        var graph = ImageRepository.Open(Fixtures.Images).Graph(new NamingOptions(Fixtures.FixtureRegistry, Fixtures.FixturePrefix));
        var s = ChangeSelector.Select(["base-a/tools/motd"], graph);
        Assert.Equal(["base-a/tools", "base-a/tools/extra"], s.Paths);
        Assert.Equal(ChangeReasonKind.Folder, s.Images[0].Reason.Kind);
        Assert.Equal(new ChangeReason(ChangeReasonKind.Parent, "base-a/tools"), s.Images[1].Reason);
    }

    [Fact]
    public void CopiesThroughAMacro_AreFollowed_BecauseTheRenderedDockerfileIsRead()
    {
        // The fixture's templates copy shared/etc/*.conf through macros.copy_files: only the rendered text names them.
        var graph = ImageRepository.Open(Fixtures.Images).Graph(new NamingOptions(Fixtures.FixtureRegistry, Fixtures.FixturePrefix));
        foreach (var file in new[] { "shared/etc/a.conf", "shared/etc/b.conf" })
        {
            var templates = graph.Images.Where(i => File.ReadAllText(Path.Combine(Fixtures.Images, i.Folder.DockerfilePath)).Contains($"\"{file}\"", StringComparison.Ordinal)).Select(i => i.Path).ToList();
            Assert.NotEmpty(templates);
            var s = ChangeSelector.Select([file], graph);
            Assert.Equal(graph.TopologicalOrder(templates.SelectMany(graph.Lineage).ToHashSet(StringComparer.Ordinal)), s.Paths);
            Assert.All(templates, t => Assert.Equal(new ChangeReason(ChangeReasonKind.Copy, file), s.Images.Single(i => i.Path == t).Reason));
        }
    }

    [Theory]
    [InlineData("COPY shared/conf/*.conf /etc/", "shared/conf/a.conf", true)]
    [InlineData("COPY shared/conf/*.conf /etc/", "shared/conf/a.txt", false)]
    [InlineData("COPY shared/conf/*.conf /etc/", "shared/conf/d.conf/f", true)] // a directory matched by the glob is copied whole
    [InlineData("COPY shared/conf/*.conf /etc/", "shared/conf/sub/a.conf", false)]
    [InlineData("COPY shared/dir /x", "shared/dir/sub/f", true)]
    [InlineData("COPY shared/dir/ /x", "shared/dir/f", true)]
    [InlineData("COPY shared/dir /x", "shared/dirx/f", false)]
    [InlineData("COPY ./shared/f?.sh /x/", "shared/f1.sh", true)]
    [InlineData("COPY [\"shared/a b\", \"/x\"]", "shared/a b", true)]
    [InlineData("COPY --from=stage shared/f /x", "shared/f", false)] // from another stage, not the context
    [InlineData("ADD https://example.org/shared/f /x", "shared/f", false)]
    public void CopySources_MatchFilesDirectoriesAndGlobs(string copy, string changed, bool selects)
    {
        var graph = new ImageGraph("/r", [new ImageDefinition(new ImageFolder("img", "Dockerfile"), $"FROM scratch\n{copy}\n", "scratch", null)]);
        var s = ChangeSelector.Select([changed], graph);
        Assert.Equal(selects, s.Images.Count == 1);
        Assert.Equal(!selects, s.Unmatched.Count == 1);
    }

    [Fact]
    public void ACopySourceThatIsNoGlob_IsTheRepositorysMistake_NeverAnExceptionThatStopsTheDaemon()
    {
        // Review finding: `COPY shared/[a- /x` made a Regex throw out of the poll, which stopped the builder daemon.
        var graph = new ImageGraph("/r", [new ImageDefinition(new ImageFolder("img", "Dockerfile"), "FROM scratch\nCOPY shared/[a- /x\n", "scratch", null)]);
        var s = ChangeSelector.Select(["shared/a"], graph);
        Assert.Empty(s.Images);
        Assert.Equal(["shared/a"], s.Unmatched);
        var named = Assert.Throws<Images.RepositoryException>(() => Images.BuildInputs.Glob("[a-"));
        Assert.Contains("is not a valid glob", named.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoChange_SelectsNothing()
    {
        var s = ChangeSelector.Select([], Reference.Value);
        Assert.Empty(s.Images);
        Assert.Empty(s.Unmatched);
    }
}
