using System.Globalization;
using System.Text;

namespace Toolforge.Agents.BuilderAgent.Templates;

internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);

    public void Set(string name, object? value) => _values[name] = value;

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s is not null; s = s.Parent)
        {
            if (s._values.TryGetValue(name, out value))
            {
                return true;
            }
        }

        value = null;
        return false;
    }

    public Scope? Parent { get; } = parent;

    public IEnumerable<KeyValuePair<string, object?>> Own => _values;
}

internal sealed record Macro(string Name, MacroNode Node, Scope Closure, string File);

internal sealed record Module(string Name, IReadOnlyDictionary<string, object?> Exports);

internal sealed record LoopInfo(int Index0, int Length);

internal sealed class JinjaRenderer(JinjaEnvironment env, string file, ISet<string>? loaded = null)
{
    public void RenderNodes(List<Node> nodes, Scope scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case DataNode d:
                    output.Append(d.Text);
                    break;
                case OutputNode o:
                    output.Append(Str(Eval(o.Expr, scope)));
                    break;
                case ForNode f:
                    var items = Iterate(Eval(f.Iter, scope), f.Line);
                    for (var i = 0; i < items.Count; i++)
                    {
                        var inner = new Scope(scope);
                        inner.Set(f.Target, items[i]);
                        inner.Set("loop", new LoopInfo(i, items.Count));
                        RenderNodes(f.Body, inner, output);
                    }

                    break;
                case MacroNode m:
                    scope.Set(m.Name, new Macro(m.Name, m, scope, file));
                    break;
                case ImportNode imp:
                    var name = Eval(imp.Template, scope) as string
                        ?? throw new TemplateException(file, imp.Line, "import needs a template name string");
                    scope.Set(imp.Alias, LoadModule(name, imp.Line));
                    break;
                default:
                    throw new TemplateException(file, node.Line, $"cannot render {node.GetType().Name}");
            }
        }
    }

    // An imported template is rendered without the importer's variables (Jinja2's default); its macros are exported.
    private Module LoadModule(string name, int line)
    {
        var nodes = env.Load(name, file, line);
        loaded?.Add(name);
        var scope = new Scope(null);
        new JinjaRenderer(env, name, loaded).RenderNodes(nodes, scope, new StringBuilder());
        return new Module(name, scope.Own.Where(kv => !kv.Key.StartsWith('_')).ToDictionary(kv => kv.Key, kv => kv.Value));
    }

    private object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case ConstExpr c:
                return c.Value;
            case NameExpr n:
                return scope.TryGet(n.Name, out var v) ? v
                    : throw new TemplateException(file, n.Line, $"undefined variable '{n.Name}'");
            case ListExpr l:
                return l.Items.Select(i => Eval(i, scope)).ToList();
            case AttrExpr a:
                return Attribute(Eval(a.Target, scope), a.Attribute, a.Line);
            case ItemExpr it:
                var target = Eval(it.Target, scope);
                var index = Eval(it.Index, scope);
                if (target is List<object?> list && index is long li)
                {
                    var k = li < 0 ? list.Count + li : li;
                    return k >= 0 && k < list.Count ? list[(int)k]
                        : throw new TemplateException(file, it.Line, $"list index {li} out of range");
                }

                return index is string s ? Attribute(target, s, it.Line)
                    : throw new TemplateException(file, it.Line, $"cannot index {TypeName(target)} with {TypeName(index)}");
            case CallExpr call:
                return Call(Eval(call.Target, scope), call, scope);
            default:
                throw new TemplateException(file, e.Line, $"cannot evaluate {e.GetType().Name}");
        }
    }

    private object? Attribute(object? target, string name, int line) => target switch
    {
        Module m when m.Exports.TryGetValue(name, out var v) => v,
        Module m => throw new TemplateException(file, line, $"template '{m.Name}' has no macro or variable '{name}'"),
        LoopInfo l => name switch
        {
            "index" => (long)(l.Index0 + 1),
            "index0" => (long)l.Index0,
            "revindex" => (long)(l.Length - l.Index0),
            "revindex0" => (long)(l.Length - l.Index0 - 1),
            "first" => l.Index0 == 0,
            "last" => l.Index0 == l.Length - 1,
            "length" => (long)l.Length,
            _ => throw new TemplateException(file, line, $"unsupported construct: loop.{name}"),
        },
        _ => throw new TemplateException(file, line, $"{TypeName(target)} has no attribute '{name}' (attribute access works on imported templates and loop)"),
    };

    private object? Call(object? target, CallExpr call, Scope scope)
    {
        if (target is not Macro macro)
        {
            throw new TemplateException(file, call.Line, $"{TypeName(target)} is not callable (only macros can be called)");
        }

        var ps = macro.Node.Params;
        if (call.Args.Count > ps.Count)
        {
            throw new TemplateException(file, call.Line, $"macro '{macro.Name}' takes not more than {ps.Count} argument(s), {call.Args.Count} given");
        }

        var inner = new Scope(macro.Closure);
        var given = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < call.Args.Count; i++)
        {
            inner.Set(ps[i].Name, Eval(call.Args[i], scope));
            given.Add(ps[i].Name);
        }

        foreach (var (name, value) in call.Kwargs)
        {
            if (!ps.Any(p => p.Name == name))
            {
                throw new TemplateException(file, call.Line, $"macro '{macro.Name}' takes no keyword argument '{name}'");
            }

            if (!given.Add(name))
            {
                throw new TemplateException(file, call.Line, $"macro '{macro.Name}' got argument '{name}' twice");
            }

            inner.Set(name, Eval(value, scope));
        }

        var renderer = new JinjaRenderer(env, macro.File, loaded);
        foreach (var (name, def) in ps)
        {
            if (!given.Contains(name))
            {
                if (def is null)
                {
                    // Jinja2 leaves it undefined; with strict undefined, using it is the error.
                    continue;
                }

                inner.Set(name, renderer.Eval(def, macro.Closure));
            }
        }

        var output = new StringBuilder();
        renderer.RenderNodes(macro.Node.Body, inner, output);
        return output.ToString();
    }

    private List<object?> Iterate(object? value, int line) => value switch
    {
        List<object?> l => l,
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        _ => throw new TemplateException(file, line, $"cannot loop over {TypeName(value)}"),
    };

    private static string Str(object? value) => value switch
    {
        string s => s,
        _ => Repr(value),
    };

    // Python's repr, which is what str() of a list shows.
    private static string Repr(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => double.IsInteger(d) && Math.Abs(d) < 1e16 ? d.ToString("0.0", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
        string s => PyStringRepr(s),
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        Macro m => $"<Macro '{m.Name}'>",
        Module m => $"<Template '{m.Name}'>",
        _ => value.ToString() ?? string.Empty,
    };

    private static string PyStringRepr(string s)
    {
        var quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var sb = new StringBuilder().Append(quote);
        foreach (var c in s)
        {
            sb.Append(c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c == quote => "\\" + c,
                _ when c < ' ' || c == '\x7f' => $"\\x{(int)c:x2}",
                _ => c.ToString(),
            });
        }

        return sb.Append(quote).ToString();
    }

    private static string TypeName(object? v) => v switch
    {
        null => "none",
        string => "a string",
        long => "an integer",
        double => "a float",
        bool => "a boolean",
        List<object?> => "a list",
        Macro m => $"macro '{m.Name}'",
        Module m => $"template '{m.Name}'",
        LoopInfo => "loop",
        _ => v.GetType().Name,
    };
}
