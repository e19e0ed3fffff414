using System.Globalization;
using System.Text;

namespace Toolforge.Agents.BuilderAgent.Templates;

/// <summary>Tokens (from <see cref="JinjaLexer"/>) to the syntax tree, with errors naming file, line and construct.</summary>
internal sealed class JinjaParser(List<Token> tokens, string file)
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
