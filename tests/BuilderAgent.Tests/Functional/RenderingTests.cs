using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Templates;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed partial class RenderingTests
{
    [Theory]
    [InlineData("docker-registry.svc.toolforge.org", "toolforge", "testing")]
    [InlineData("127.0.0.1:5000", "tf", "latest")]
    [InlineData("registry.example.org/some/path", "x-y", "2026.11.25")]
    public async Task ReferenceRepository_EveryTemplate_RendersAsJinja2Does(string registry, string prefix, string tag)
    {
        var root = Fixtures.ReferenceRepository;
        var repo = ImageRepository.Open(root);
        var expected = await Fixtures.RenderWithJinja2Async(root, repo.Folders.Select(f => f.Path), registry, prefix, tag);
        Assert.Equal(52, expected.Count);
        var naming = new NamingOptions(registry, prefix, tag);
        foreach (var folder in repo.Folders)
        {
            var ours = repo.Render(folder, naming);
            Assert.True(expected[folder.Path] == ours, $"{folder.Path} differs from Jinja2:\n--- jinja2\n{expected[folder.Path]}\n--- ours\n{ours}");
        }
    }

    [Theory]
    [MemberData(nameof(EdgeCases))]
    public async Task EdgeCase_RendersAsJinja2Does(string name, string template)
    {
        using var dir = new TempDir("jinja");
        Directory.CreateDirectory(dir["case"]);
        await File.WriteAllTextAsync(dir["case/Dockerfile.template"], template);
        var expected = await Fixtures.RenderWithJinja2Async(dir.Path, ["case"], "r", "p", "t");
        var ours = new JinjaEnvironment(dir.Path).Render("case/Dockerfile.template", new Dictionary<string, object?>());
        Assert.True(expected["case"] == ours, $"{name}:\n--- jinja2\n{expected["case"].Replace("\n", "⏎\n", StringComparison.Ordinal)}\n--- ours\n{ours.Replace("\n", "⏎\n", StringComparison.Ordinal)}");
    }
}
