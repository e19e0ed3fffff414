using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Templates;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>Rendering equals Jinja2 3.x byte for byte; everything outside the subset is a clear error.</summary>
public sealed class RenderingTests
{
    [Fact]
    public void FixtureTemplates_RenderExactlyAsTheStoredJinja2Output()
    {
        var repo = ImageRepository.Open(Fixtures.Images);
        var naming = new NamingOptions(Fixtures.FixtureRegistry, Fixtures.FixturePrefix, "testing");
        Assert.Equal(Fixtures.FixtureImages.Order(StringComparer.Ordinal), repo.Folders.Select(f => f.Path));
        foreach (var folder in repo.Folders)
        {
            var expected = File.ReadAllText(Path.Combine(Fixtures.Expected, folder.Path.Replace('/', '-') + ".Dockerfile"));
            Assert.Equal(expected, repo.Render(folder, naming));
        }
    }

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

    // Whitespace-control corners, each compared with Jinja2 itself.
    public static TheoryData<string, string> EdgeCases => new()
    {
        { "dash-both", "a  \n  {%- for x in ['1','2'] -%}  \n {{ x }}  \n  {%- endfor -%}  \n b\n" },
        { "plus-keeps-indent", "start\n    {%+ for x in ['1'] %}\n  {{ x }}\n    {% endfor %}\nend\n" },
        { "plus-end-keeps-newline", "{% for x in ['1', '2'] +%}\n{{ x }}{% endfor %}\n" },
        { "lstrip-tabs-comment", "x\n\t \t{# comment #}\ny\n\t{#- dash comment -#}\n   z\n" },
        { "var-dash", "a   {{- 'b' -}}   \n\n c\n" },
        { "not-lstripped-after-text", "text {% for x in ['1'] %}{{ x }}{% endfor %}\n" },
        { "macro-defaults-and-kwargs", "{% macro m(a, b='B', c=\"C\") %}[{{ a }}|{{ b }}|{{ c }}]{% endmacro %}{{ m('A') }}{{ m('A', c='c') }}{{ m(a='1', b='2') }}\n" },
        { "loop-vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }} {% endfor %}\n" },
        { "nested-for-list-repr", "{% for l in [['a', \"b'c\"], []] %}{{ l }};{% endfor %}{{ 42 }}{{ 1.5 }}{{ none }}{{ true }}\n" },
        { "trailing-newlines", "line\n\n\n" },
        { "crlf", "a\r\n  {% for x in ['1'] %}\r\n{{ x }}\r\n  {% endfor %}\r\nb\r\n" },
        { "string-escapes", "{{ 'it\\'s' }} {{ \"tab\\there\" }} {{ 'a' \"b\" }}\n" },
        { "comment-plus", "a\n    {#+ keep indent +#}\nb\n" },
        { "block-at-start-no-newline", "  {% for x in ['1'] %}{{ x }}{% endfor %}" },
    };

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

    [Theory]
    [InlineData("FROM x\n{% if true %}y{% endif %}\n", 2, "unsupported construct: '{% if %}'")]
    [InlineData("FROM x\n\n{{ name | upper }}\n", 3, "unsupported construct: filter '|'")]
    [InlineData("FROM x\n{{ nope }}\n", 2, "undefined variable 'nope'")]
    [InlineData("FROM x\n{% set a = 1 %}\n", 2, "unsupported construct: '{% set %}'")]
    [InlineData("FROM x\n{{ 'a' ~ 'b' }}\n", 2, "unsupported construct: string concatenation '~'")]
    [InlineData("FROM x\n{% for x in ['a'] %}\n", 2, "'endfor' was never closed")]
    [InlineData("FROM x\n{# open comment\n", 2, "missing end of comment tag")]
    [InlineData("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", 1, "macro 'm' takes no keyword argument 'b'")]
    public void OutsideTheSubset_IsAnErrorNamingFileLineAndConstruct(string template, int line, string reason)
    {
        using var dir = new TempDir("jinja");
        Directory.CreateDirectory(dir["img"]);
        File.WriteAllText(dir["img/Dockerfile.template"], template);
        var ex = Assert.Throws<TemplateException>(() => new JinjaEnvironment(dir.Path).Render("img/Dockerfile.template", new Dictionary<string, object?>()));
        Assert.Equal("img/Dockerfile.template", ex.File);
        Assert.Equal(line, ex.Line);
        Assert.Contains(reason, ex.Reason, StringComparison.Ordinal);
    }
}
