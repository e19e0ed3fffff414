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
    public string Render(string name, IReadOnlyDictionary<string, object?> variables)
    {
        var nodes = Load(name, name, 0);
        var scope = new Scope(null);
        foreach (var (k, v) in variables)
        {
            scope.Set(k, v);
        }

        var output = new StringBuilder();
        new Renderer(this, name).RenderNodes(nodes, scope, output);
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

        var nodes = new Parser(JinjaLexer.Tokenize(File.ReadAllText(path), name), name).ParseTemplate();
        _parsed[name] = nodes;
        return nodes;
    }

    // ------------------------------------------------------------------ AST

    internal abstract record Node(int Line);

    internal sealed record DataNode(string Text, int Line) : Node(Line);

    internal sealed record OutputNode(Expr Expr, int Line) : Node(Line);

    internal sealed record ForNode(string Target, Expr Iter, List<Node> Body, int Line) : Node(Line);

    internal sealed record MacroNode(string Name, List<(string Name, Expr? Default)> Params, List<Node> Body, int Line) : Node(Line);

    internal sealed record ImportNode(Expr Template, string Alias, int Line) : Node(Line);

    internal abstract record Expr(int Line);

    internal sealed record NameExpr(string Name, int Line) : Expr(Line);

    internal sealed record ConstExpr(object? Value, int Line) : Expr(Line);

    internal sealed record ListExpr(List<Expr> Items, int Line) : Expr(Line);

    internal sealed record AttrExpr(Expr Target, string Attribute, int Line) : Expr(Line);

    internal sealed record ItemExpr(Expr Target, Expr Index, int Line) : Expr(Line);

    internal sealed record CallExpr(Expr Target, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);

    // ------------------------------------------------------------------ parser

    private sealed class Parser(List<Token> tokens, string file)
    {
        private int _i;

        private Token Current => tokens[_i];

        private Token Next() => tokens[_i++];

        private TemplateException Error(string message, Token? at = null) => new(file, (at ?? Current).Line, message);

        public List<Node> ParseTemplate()
        {
            var nodes = ParseUntil(out var end);
            if (end is not null)
            {
                throw Error($"unexpected '{end.Value.Value}': no block is open to end", end);
            }

            return nodes;
        }

        // Parses nodes until EOF or a block whose name is in `enders` (left unconsumed as `end`).
        private List<Node> ParseUntil(out Token? end, params string[] enders)
        {
            var nodes = new List<Node>();
            end = null;
            while (Current.Kind != TokenKind.Eof)
            {
                var t = Next();
                switch (t.Kind)
                {
                    case TokenKind.Data:
                        nodes.Add(new DataNode(t.Value, t.Line));
                        break;
                    case TokenKind.VariableBegin:
                        var expr = ParseExpression();
                        Expect(TokenKind.VariableEnd, "'}}'");
                        nodes.Add(new OutputNode(expr, t.Line));
                        break;
                    case TokenKind.BlockBegin:
                        var name = Current;
                        if (name.Kind != TokenKind.Name)
                        {
                            throw Error($"expected a statement name after '{{%', got {name}");
                        }

                        if (enders.Contains(name.Value))
                        {
                            end = name;
                            Next();
                            return nodes;
                        }

                        nodes.Add(ParseStatement());
                        break;
                    default:
                        throw Error($"unexpected {t}", t);
                }
            }

            if (enders.Length > 0)
            {
                throw Error($"unexpected end of template: '{enders[0]}' was never closed");
            }

            return nodes;
        }

        private Node ParseStatement()
        {
            var t = Next();
            switch (t.Value)
            {
                case "for":
                {
                    var target = ExpectName("a loop variable");
                    if (Current is { Kind: TokenKind.Operator, Value: "," })
                    {
                        throw Error("unsupported construct: tuple unpacking in 'for'");
                    }

                    ExpectKeyword("in");
                    var iter = ParseExpression();
                    if (Current.Kind == TokenKind.Name && Current.Value is "if" or "recursive")
                    {
                        throw Error($"unsupported construct: '{Current.Value}' in 'for'");
                    }

                    Expect(TokenKind.BlockEnd, "'%}'");
                    var body = ParseUntil(out var end, "endfor", "else");
                    if (end?.Value == "else")
                    {
                        throw Error("unsupported construct: 'for ... else'", end);
                    }

                    Expect(TokenKind.BlockEnd, "'%}'");
                    return new ForNode(target, iter, body, t.Line);
                }

                case "macro":
                {
                    var name = ExpectName("a macro name");
                    ExpectOperator("(");
                    var parameters = new List<(string, Expr?)>();
                    while (!IsOperator(")"))
                    {
                        var p = ExpectName("a parameter name");
                        Expr? def = null;
                        if (IsOperator("="))
                        {
                            Next();
                            def = ParseExpression();
                        }
                        else if (parameters.Any(x => x.Item2 is not null))
                        {
                            throw Error($"parameter '{p}' without a default follows one with a default");
                        }

                        parameters.Add((p, def));
                        if (!IsOperator(","))
                        {
                            break;
                        }

                        Next();
                    }

                    ExpectOperator(")");
                    Expect(TokenKind.BlockEnd, "'%}'");
                    var body = ParseUntil(out _, "endmacro");
                    if (Current.Kind == TokenKind.Name)
                    {
                        Next(); // {% endmacro name %}
                    }

                    Expect(TokenKind.BlockEnd, "'%}'");
                    return new MacroNode(name, parameters, body, t.Line);
                }

                case "import":
                {
                    var template = ParseExpression();
                    ExpectKeyword("as");
                    var alias = ExpectName("a name after 'as'");
                    if (Current.Kind == TokenKind.Name && Current.Value is "with" or "without")
                    {
                        throw Error($"unsupported construct: 'import ... {Current.Value} context'");
                    }

                    Expect(TokenKind.BlockEnd, "'%}'");
                    return new ImportNode(template, alias, t.Line);
                }

                default:
                    throw Error($"unsupported construct: '{{% {t.Value} %}}' (this renderer knows import, macro and for)", t);
            }
        }

        private Expr ParseExpression()
        {
            var e = ParsePostfix(ParsePrimary());
            if (Current.Kind == TokenKind.Operator && Current.Value is not ("," or ")" or "]" or "}" or ":" or "="))
            {
                var what = Current.Value switch
                {
                    "|" => "filter '|'",
                    "~" => "string concatenation '~'",
                    _ => $"operator '{Current.Value}'",
                };
                throw Error($"unsupported construct: {what}");
            }

            if (Current.Kind == TokenKind.Name && Current.Value is "if" or "is" or "and" or "or" or "not" or "in")
            {
                throw Error($"unsupported construct: '{Current.Value}' in an expression");
            }

            return e;
        }

        private Expr ParsePrimary()
        {
            var t = Next();
            switch (t.Kind)
            {
                case TokenKind.Name:
                    return t.Value switch
                    {
                        "true" or "True" => new ConstExpr(true, t.Line),
                        "false" or "False" => new ConstExpr(false, t.Line),
                        "none" or "None" => new ConstExpr(null, t.Line),
                        "not" => throw Error("unsupported construct: 'not'", t),
                        _ => new NameExpr(t.Value, t.Line),
                    };
                case TokenKind.String:
                    var text = t.Value;
                    while (Current.Kind == TokenKind.String)
                    {
                        text += Next().Value; // adjacent literals concatenate, as in Python
                    }

                    return new ConstExpr(text, t.Line);
                case TokenKind.Integer:
                    return new ConstExpr(ParseInteger(t), t.Line);
                case TokenKind.Float:
                    return new ConstExpr(double.Parse(t.Value.Replace("_", string.Empty, StringComparison.Ordinal), CultureInfo.InvariantCulture), t.Line);
                case TokenKind.Operator when t.Value == "[":
                {
                    var items = new List<Expr>();
                    while (!IsOperator("]"))
                    {
                        items.Add(ParseExpression());
                        if (!IsOperator(","))
                        {
                            break;
                        }

                        Next();
                    }

                    ExpectOperator("]");
                    return new ListExpr(items, t.Line);
                }

                case TokenKind.Operator when t.Value == "(":
                {
                    var inner = ParseExpression();
                    if (IsOperator(","))
                    {
                        throw Error("unsupported construct: tuple literal");
                    }

                    ExpectOperator(")");
                    return inner;
                }

                case TokenKind.Operator when t.Value == "{":
                    throw Error("unsupported construct: dict literal", t);
                case TokenKind.Operator when t.Value == "-":
                    throw Error("unsupported construct: unary '-'", t);
                default:
                    throw Error($"expected an expression, got {t}", t);
            }
        }

        private Expr ParsePostfix(Expr e)
        {
            while (true)
            {
                if (IsOperator("."))
                {
                    Next();
                    var attr = Next();
                    if (attr.Kind is not (TokenKind.Name or TokenKind.Integer))
                    {
                        throw Error($"expected an attribute name after '.', got {attr}", attr);
                    }

                    e = new AttrExpr(e, attr.Value, attr.Line);
                }
                else if (IsOperator("["))
                {
                    var open = Next();
                    var index = ParseExpression();
                    if (IsOperator(":"))
                    {
                        throw Error("unsupported construct: slice");
                    }

                    ExpectOperator("]");
                    e = new ItemExpr(e, index, open.Line);
                }
                else if (IsOperator("("))
                {
                    var open = Next();
                    var args = new List<Expr>();
                    var kwargs = new List<(string, Expr)>();
                    while (!IsOperator(")"))
                    {
                        if (IsOperator("*") || IsOperator("**"))
                        {
                            throw Error("unsupported construct: *args or **kwargs in a call");
                        }

                        if (Current.Kind == TokenKind.Name && tokens[_i + 1] is { Kind: TokenKind.Operator, Value: "=" })
                        {
                            var key = Next().Value;
                            Next();
                            if (kwargs.Any(k => k.Item1 == key))
                            {
                                throw Error($"keyword argument '{key}' given twice");
                            }

                            kwargs.Add((key, ParseExpression()));
                        }
                        else
                        {
                            if (kwargs.Count > 0)
                            {
                                throw Error("positional argument follows keyword argument");
                            }

                            args.Add(ParseExpression());
                        }

                        if (!IsOperator(","))
                        {
                            break;
                        }

                        Next();
                    }

                    ExpectOperator(")");
                    e = new CallExpr(e, args, kwargs, open.Line);
                }
                else
                {
                    return e;
                }
            }
        }

        private long ParseInteger(Token t)
        {
            var v = t.Value.Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant();
            try
            {
                return v.StartsWith("0x", StringComparison.Ordinal) ? Convert.ToInt64(v[2..], 16)
                    : v.StartsWith("0o", StringComparison.Ordinal) ? Convert.ToInt64(v[2..], 8)
                    : v.StartsWith("0b", StringComparison.Ordinal) ? Convert.ToInt64(v[2..], 2)
                    : long.Parse(v, CultureInfo.InvariantCulture);
            }
            catch (OverflowException)
            {
                throw Error($"integer literal {t.Value} is too large", t);
            }
        }

        private bool IsOperator(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;

        private void ExpectOperator(string op)
        {
            if (!IsOperator(op))
            {
                throw Error($"expected '{op}', got {Current}");
            }

            Next();
        }

        private void ExpectKeyword(string word)
        {
            if (Current.Kind != TokenKind.Name || Current.Value != word)
            {
                throw Error($"expected '{word}', got {Current}");
            }

            Next();
        }

        private string ExpectName(string what)
        {
            if (Current.Kind != TokenKind.Name)
            {
                throw Error($"expected {what}, got {Current}");
            }

            return Next().Value;
        }

        private void Expect(TokenKind kind, string what)
        {
            if (Current.Kind != kind)
            {
                throw Error($"expected {what}, got {Current}");
            }

            Next();
        }
    }

    // ------------------------------------------------------------------ rendering

    private sealed class Scope(Scope? parent)
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

    private sealed record Macro(string Name, MacroNode Node, Scope Closure, string File);

    private sealed record Module(string Name, IReadOnlyDictionary<string, object?> Exports);

    private sealed record LoopInfo(int Index0, int Length);

    private sealed class Renderer(JinjaEnvironment env, string file)
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
            var scope = new Scope(null);
            new Renderer(env, name).RenderNodes(nodes, scope, new StringBuilder());
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

            var renderer = new Renderer(env, macro.File);
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
}
