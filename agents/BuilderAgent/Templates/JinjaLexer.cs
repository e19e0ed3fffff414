using System.Text;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.BuilderAgent.Templates;

/// <summary>A template problem, always with the file and line it is about.</summary>
public sealed class TemplateException(string file, int line, string message) : Exception($"{file}:{line}: {message}")
{
    public string File { get; } = file;

    public int Line { get; } = line;

    public string Reason { get; } = message;
}

internal enum TokenKind
{
    Data,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    Eof,
}

internal readonly record struct Token(TokenKind Kind, string Value, int Line)
{
    public override string ToString() => Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        _ => $"'{Value}'",
    };
}

/// <summary>
/// Splits a template into tokens exactly as Jinja2 3.x's lexer does with <c>trim_blocks=True</c>,
/// <c>lstrip_blocks=True</c> and <c>keep_trailing_newline=False</c>: the same whitespace control
/// (<c>-</c> strips all whitespace on that side, <c>+</c> turns lstrip/trim off for that tag, a block or
/// comment end eats one following newline, a block or comment alone on its line loses its indentation),
/// so the rendered bytes match Jinja2's.
/// </summary>
internal static partial class JinjaLexer
{
    [GeneratedRegex(@"\G\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\G(?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+\-]?(\d+_)*\d+|\.(\d+_)*\d+)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex FloatLiteral();

    [GeneratedRegex(@"\G(0b(_?[0-1])+|0o(_?[0-7])+|0x(_?[\da-f])+|[1-9](_?\d)*|0(_?0)*)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex IntegerLiteral();

    [GeneratedRegex(@"\G[a-zA-Z_][a-zA-Z0-9_]*", RegexOptions.CultureInvariant)]
    private static partial Regex NameLiteral();

    [GeneratedRegex(@"\G('([^'\\]*(?:\\.[^'\\]*)*)'|""([^""\\]*(?:\\.[^""\\]*)*)"")", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex StringLiteral();

    // Longest first, as Jinja sorts its operators.
    private static readonly string[] Operators =
    [
        "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ];

    public static string Normalize(string source)
    {
        var s = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        return s.EndsWith('\n') ? s[..^1] : s;
    }

    public static List<Token> Tokenize(string source, string file)
    {
        var s = Normalize(source);
        var tokens = new List<Token>();
        var pos = 0;
        var line = 1;
        var lineStarting = true;
        while (pos < s.Length)
        {
            var start = NextTagStart(s, pos);
            if (start < 0)
            {
                tokens.Add(new Token(TokenKind.Data, s[pos..], line));
                line += Count(s.AsSpan(pos), '\n');
                break;
            }

            var kind = s[start + 1];
            var sign = start + 2 < s.Length && s[start + 2] is '-' or '+' ? s[start + 2] : '\0';
            var text = s[pos..start];
            var newlinesStripped = 0;
            if (sign == '-')
            {
                var stripped = text.TrimEnd();
                newlinesStripped = Count(text.AsSpan(stripped.Length), '\n');
                text = stripped;
            }
            else if (sign != '+' && kind != '{')
            {
                // lstrip_blocks: indentation alone before a block or comment tag goes.
                var lPos = text.LastIndexOf('\n') + 1;
                if ((lPos > 0 || lineStarting) && lPos < text.Length && IsAllWhitespace(text.AsSpan(lPos)))
                {
                    text = text[..lPos];
                }
            }

            if (text.Length > 0)
            {
                tokens.Add(new Token(TokenKind.Data, text, line));
            }

            line += Count(text, '\n') + newlinesStripped;
            pos = start + 2 + (sign == '\0' ? 0 : 1);
            lineStarting = false;
            switch (kind)
            {
                case '#':
                    (pos, line, lineStarting) = SkipComment(s, pos, line, file);
                    break;
                case '%':
                    tokens.Add(new Token(TokenKind.BlockBegin, "{%", line));
                    (pos, line, lineStarting) = LexTag(s, pos, line, file, isBlock: true, tokens);
                    break;
                default:
                    tokens.Add(new Token(TokenKind.VariableBegin, "{{", line));
                    (pos, line, lineStarting) = LexTag(s, pos, line, file, isBlock: false, tokens);
                    break;
            }
        }

        tokens.Add(new Token(TokenKind.Eof, string.Empty, line));
        return tokens;
    }

    private static bool IsAllWhitespace(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (!char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    private static int NextTagStart(string s, int from)
    {
        for (var i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
        {
            if (s[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    private static (int Pos, int Line, bool LineStarting) SkipComment(string s, int pos, int line, string file)
    {
        for (var p = pos; p < s.Length; p++)
        {
            int end;
            if (string.CompareOrdinal(s, p, "+#}", 0, 3) == 0)
            {
                end = p + 3;
            }
            else if (string.CompareOrdinal(s, p, "-#}", 0, 3) == 0)
            {
                end = p + 3;
                while (end < s.Length && char.IsWhiteSpace(s[end]))
                {
                    end++;
                }
            }
            else if (string.CompareOrdinal(s, p, "#}", 0, 2) == 0)
            {
                end = p + 2;
                if (end < s.Length && s[end] == '\n')
                {
                    end++;
                }
            }
            else
            {
                continue;
            }

            return (end, line + Count(s.AsSpan(pos, end - pos), '\n'), s[end - 1] == '\n');
        }

        throw new TemplateException(file, line, "missing end of comment tag '#}'");
    }

    private static (int Pos, int Line, bool LineStarting) LexTag(string s, int pos, int line, string file, bool isBlock, List<Token> tokens)
    {
        var balancing = new Stack<char>();
        while (true)
        {
            if (pos >= s.Length)
            {
                throw new TemplateException(file, line, $"unexpected end of template inside a {(isBlock ? "'{%' block" : "'{{' expression")}");
            }

            if (balancing.Count == 0 && MatchEnd(s, pos, isBlock) is { } end)
            {
                tokens.Add(new Token(isBlock ? TokenKind.BlockEnd : TokenKind.VariableEnd, isBlock ? "%}" : "}}", line));
                return (end, line + Count(s.AsSpan(pos, end - pos), '\n'), s[end - 1] == '\n');
            }

            Match m;
            if ((m = Whitespace().Match(s, pos)).Success)
            {
                line += Count(m.ValueSpan, '\n');
                pos += m.Length;
            }
            else if ((m = FloatLiteral().Match(s, pos)).Success)
            {
                tokens.Add(new Token(TokenKind.Float, m.Value, line));
                pos += m.Length;
            }
            else if ((m = IntegerLiteral().Match(s, pos)).Success)
            {
                tokens.Add(new Token(TokenKind.Integer, m.Value, line));
                pos += m.Length;
            }
            else if ((m = NameLiteral().Match(s, pos)).Success)
            {
                tokens.Add(new Token(TokenKind.Name, m.Value, line));
                pos += m.Length;
            }
            else if ((m = StringLiteral().Match(s, pos)).Success)
            {
                tokens.Add(new Token(TokenKind.String, Unescape(m.Value[1..^1], file, line), line));
                line += Count(m.ValueSpan, '\n');
                pos += m.Length;
            }
            else if (Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0) is { } op)
            {
                switch (op)
                {
                    case "(":
                        balancing.Push(')');
                        break;
                    case "[":
                        balancing.Push(']');
                        break;
                    case "{":
                        balancing.Push('}');
                        break;
                    case ")" or "]" or "}":
                        if (balancing.Count == 0 || balancing.Pop() != op[0])
                        {
                            throw new TemplateException(file, line, $"unexpected '{op}'");
                        }

                        break;
                    default:
                        break;
                }

                tokens.Add(new Token(TokenKind.Operator, op, line));
                pos += op.Length;
            }
            else
            {
                throw new TemplateException(file, line, $"unexpected character '{s[pos]}'");
            }
        }
    }

    private static int? MatchEnd(string s, int pos, bool isBlock)
    {
        if (isBlock)
        {
            if (string.CompareOrdinal(s, pos, "+%}", 0, 3) == 0)
            {
                return pos + 3;
            }

            if (string.CompareOrdinal(s, pos, "-%}", 0, 3) == 0)
            {
                var e = pos + 3;
                while (e < s.Length && char.IsWhiteSpace(s[e]))
                {
                    e++;
                }

                return e;
            }

            if (string.CompareOrdinal(s, pos, "%}", 0, 2) == 0)
            {
                return pos + 2 + (pos + 2 < s.Length && s[pos + 2] == '\n' ? 1 : 0);
            }

            return null;
        }

        if (string.CompareOrdinal(s, pos, "-}}", 0, 3) == 0)
        {
            var e = pos + 3;
            while (e < s.Length && char.IsWhiteSpace(s[e]))
            {
                e++;
            }

            return e;
        }

        return string.CompareOrdinal(s, pos, "}}", 0, 2) == 0 ? pos + 2 : null;
    }

    private static string Unescape(string body, string file, int line)
    {
        if (!body.Contains('\\', StringComparison.Ordinal))
        {
            return body;
        }

        var sb = new StringBuilder(body.Length);
        for (var i = 0; i < body.Length; i++)
        {
            var c = body[i];
            if (c != '\\' || i + 1 >= body.Length)
            {
                sb.Append(c);
                continue;
            }

            var n = body[++i];
            switch (n)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': break;
                case '0': sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                default:
                    throw new TemplateException(file, line, $"unsupported escape '\\{n}' in a string literal");
            }
        }

        return sb.ToString();
    }

    private static int Count(ReadOnlySpan<char> s, char c)
    {
        var n = 0;
        foreach (var x in s)
        {
            if (x == c)
            {
                n++;
            }
        }

        return n;
    }
}
