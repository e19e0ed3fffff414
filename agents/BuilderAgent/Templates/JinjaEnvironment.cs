using System.Globalization;
using System.Text;

namespace Toolforge.Agents.BuilderAgent.Templates;

/// <summary>
/// The subset of Jinja2 that Toolforge's image repository uses, rendered byte for byte as Jinja2 3.x renders it
/// (with trim_blocks, lstrip_blocks and strict undefined): <c>import ... as</c>, <c>macro</c> with default and
/// keyword arguments, <c>for</c> (with <c>loop.index</c>, <c>loop.first</c>, ...), <c>{{ }}</c> with names, attribute
/// access, calls, string, number and list literals, comments and whitespace control. Anything else (filters,
/// <c>if</c>, <c>set</c>, operators, ...) is an error naming the file, the line and the construct; so is an
/// undefined variable.
/// </summary>
public sealed class JinjaEnvironment(string root)
{
    private readonly Dictionary<string, List<Node>> _parsed = new(StringComparer.Ordinal);

    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>Renders the template at <paramref name="name"/> (a path relative to the root, with '/').</summary>
    public string Render(string name, IReadOnlyDictionary<string, object?> variables) => Render(name, variables, null);

    /// <summary>
    /// Renders <paramref name="name"/>; every other template the rendering loads (its imports, and theirs) is added to
    /// <paramref name="loaded"/>: what a change to the repository must be compared against.
    /// </summary>
    public string Render(string name, IReadOnlyDictionary<string, object?> variables, ISet<string>? loaded)
    {
        var nodes = Load(name, name, 0);
        var scope = new Scope(null);
        foreach (var (k, v) in variables)
        {
            scope.Set(k, v);
        }

        var output = new StringBuilder();
        new JinjaRenderer(this, name, loaded).RenderNodes(nodes, scope, output);
        return output.ToString();
    }

    internal List<Node> Load(string name, string fromFile, int fromLine)
    {
        if (_parsed.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var path = Path.GetFullPath(Path.Combine(Root, name));
        if (!path.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(path))
        {
            throw new TemplateException(fromFile, fromLine, $"template '{name}' not found under {Root}");
        }

        var nodes = new JinjaParser(JinjaLexer.Tokenize(File.ReadAllText(path), name), name).ParseTemplate();
        _parsed[name] = nodes;
        return nodes;
    }
}
