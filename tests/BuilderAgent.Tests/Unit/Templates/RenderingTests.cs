using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Templates;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>Rendering equals Jinja2 3.x byte for byte; everything outside the subset is a clear error.</summary>
public sealed partial class RenderingTests
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
