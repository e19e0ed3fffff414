using System.Text;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>A problem in an iptables-save dump, naming the line.</summary>
public sealed class IptablesParseException(int line, string message) : Exception($"iptables-save line {line}: {message}")
{
    public int Line { get; } = line;
}

/// <summary>
/// One rule of an iptables-save dump, read by tokens rather than positions: kernel order
/// (<c>-d 10.96.0.1/32 -p tcp -m comment ... -m tcp --dport 443</c>) and kube-proxy's restore order
/// (<c>-m comment ... -m tcp -p tcp -d 10.96.0.1 --dport 443</c>) give the same rule.
/// </summary>
public sealed class IptablesRule
{
    public required string Table { get; init; }

    public required string Chain { get; init; }

    public required int Line { get; init; }

    public string? Source { get; set; }

    public bool SourceNegated { get; set; }

    /// <summary>Destination without a /32 suffix.</summary>
    public string? Destination { get; set; }

    public bool DestinationNegated { get; set; }

    public string? Protocol { get; set; }

    public string? DestinationPort { get; set; }

    /// <summary>The --comment value (kube-proxy's "namespace/name:port ..."), made a string only when asked for.</summary>
    public string? Comment => _comment ??= CommentText is { } c ? (CommentEscaped ? IptablesDump.Unescape(c.Span) : c.ToString()) : null;

    internal ReadOnlyMemory<char>? CommentText { get; set; }

    internal bool CommentEscaped { get; set; }

    public string? Jump { get; set; }

    public bool DestinationTypeLocal { get; set; }

    public string? ToDestination { get; set; }

    /// <summary>The rule after its chain name, as the dump printed it.</summary>
    public string RawText => Raw.ToString();

    /// <summary>A slice of the dump's text: a 70,000-rule dump is not copied a second time.</summary>
    internal ReadOnlyMemory<char> Raw { get; init; }

    private string? _comment;

    public override string ToString() => $"-t {Table} -A {Chain} {RawText}";
}

/// <summary>A parsed iptables-save dump: chains per table and their rules. Counters (<c>-c</c>) are tolerated.</summary>
public sealed class IptablesDump
{
    private readonly Dictionary<string, HashSet<string>> _chains = new(StringComparer.Ordinal);
    private readonly List<IptablesRule> _rules = [];
    private readonly Dictionary<(string Table, string Chain), List<IptablesRule>> _byChain = [];

    public IReadOnlyList<IptablesRule> Rules => _rules;

    public bool HasChain(string table, string chain) => _chains.TryGetValue(table, out var c) && c.Contains(chain);

    public IReadOnlyList<IptablesRule> InChain(string table, string chain) => _byChain.GetValueOrDefault((table, chain)) ?? [];

    private void Add(IptablesRule rule)
    {
        _rules.Add(rule);
        if (!_byChain.TryGetValue((rule.Table, rule.Chain), out var list))
        {
            _byChain[(rule.Table, rule.Chain)] = list = [];
        }

        list.Add(rule);
    }

    public bool HasTable(string table) => _chains.ContainsKey(table);

    /// <summary>Every chain declared in the dump, of every table.</summary>
    public IEnumerable<string> Chains => _chains.Values.SelectMany(c => c);

    public static IptablesDump Parse(string text)
    {
        var dump = new IptablesDump();
        var names = new Dictionary<string, string>(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        string? table = null;
        var lineNo = 0;
        var lastContent = 0;
        var pos = 0;
        while (pos < text.Length)
        {
            var nl = text.IndexOf('\n', pos);
            var end = nl < 0 ? text.Length : nl;
            var lineMemory = text.AsMemory(pos, end - pos).Trim();
            pos = end + 1;
            lineNo++;
            var line = lineMemory.Span;
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            lastContent = lineNo;

            // iptables-save -c puts "[packets:bytes]" before each rule.
            if (line[0] == '[')
            {
                var close = line.IndexOf(']');
                if (close < 0)
                {
                    throw new IptablesParseException(lineNo, $"unterminated counter \"{Cut(line)}\"");
                }

                lineMemory = lineMemory[(close + 1)..].TrimStart();
                line = lineMemory.Span;
                if (line.Length == 0)
                {
                    throw new IptablesParseException(lineNo, "a counter without a rule");
                }
            }

            switch (line[0])
            {
                case '*':
                    table = Intern(names, line[1..].Trim());
                    if (table.Length == 0)
                    {
                        throw new IptablesParseException(lineNo, "table name missing after '*'");
                    }

                    dump._chains.TryAdd(table, new HashSet<string>(StringComparer.Ordinal));
                    break;
                case ':':
                    RequireTable(table, lineNo, line);
                    var afterColon = line[1..];
                    var space = afterColon.IndexOf(' ');
                    var name = space < 0 ? afterColon : afterColon[..space];
                    if (name.Length == 0)
                    {
                        throw new IptablesParseException(lineNo, "chain name missing after ':'");
                    }

                    dump._chains[table!].Add(Intern(names, name));
                    break;
                case '-':
                    RequireTable(table, lineNo, line);
                    dump.Add(ParseRule(table!, lineMemory, lineNo, names));
                    break;
                default:
                    if (line.SequenceEqual("COMMIT"))
                    {
                        table = null;
                        break;
                    }

                    throw new IptablesParseException(lineNo, $"not an iptables-save line: \"{Cut(line)}\"");
            }
        }

        if (table is not null)
        {
            throw new IptablesParseException(lastContent, $"table {table} has no COMMIT (truncated dump?)");
        }

        return dump;
    }

    private static string Intern(Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> names, ReadOnlySpan<char> name)
    {
        if (!names.TryGetValue(name, out var s))
        {
            s = name.ToString();
            names[s] = s;
        }

        return s;
    }

    private static void RequireTable(string? table, int lineNo, ReadOnlySpan<char> line)
    {
        if (table is null)
        {
            throw new IptablesParseException(lineNo, $"\"{Cut(line)}\" outside a table (no '*table' line before it)");
        }
    }

    /// <summary>
    /// Reads a rule token by token without splitting the line: only the values the audit keeps become strings, and
    /// chain, target and protocol names are shared between rules (a 70,000-rule dump repeats them all the time).
    /// </summary>
    private static IptablesRule ParseRule(string table, ReadOnlyMemory<char> lineMemory, int lineNo, Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> names)
    {
        var line = lineMemory.Span;
        var tokens = new Tokenizer(line, lineNo);
        if (!tokens.Next(out var first, out _) || !line[first].SequenceEqual("-A") || !tokens.Next(out var chainRange, out var chainQuoted))
        {
            throw new IptablesParseException(lineNo, $"expected \"-A CHAIN ...\", got \"{Cut(line)}\"");
        }

        var rule = new IptablesRule { Table = table, Chain = Value(line, chainRange, chainQuoted, names, intern: true), Line = lineNo, Raw = lineMemory[chainRange.End..].TrimStart() };
        var negate = false;
        while (tokens.Next(out var range, out _))
        {
            var t = line[range];
            if (t.SequenceEqual("!"))
            {
                negate = true;
                continue;
            }

            switch (t)
            {
                case "-s" or "--source":
                    rule.Source = StripHostMask(Arg(ref tokens, line, t, lineNo, names));
                    rule.SourceNegated = negate;
                    break;
                case "-d" or "--destination":
                    rule.Destination = StripHostMask(Arg(ref tokens, line, t, lineNo, names));
                    rule.DestinationNegated = negate;
                    break;
                case "-p" or "--protocol":
                    rule.Protocol = Arg(ref tokens, line, t, lineNo, names, intern: true).ToLowerInvariant();
                    break;
                case "--dport" or "--destination-port":
                    rule.DestinationPort = Arg(ref tokens, line, t, lineNo, names, intern: true);
                    break;
                case "--comment":
                    if (!tokens.Next(out var c, out var quoted))
                    {
                        throw new IptablesParseException(lineNo, "option --comment has no value");
                    }

                    rule.CommentText = lineMemory[c];
                    rule.CommentEscaped = quoted && line[c].Contains('\\');
                    break;
                case "-j" or "--jump" or "-g" or "--goto":
                    rule.Jump = Arg(ref tokens, line, t, lineNo, names, intern: true);
                    break;
                case "--dst-type":
                    rule.DestinationTypeLocal = Arg(ref tokens, line, t, lineNo, names) == "LOCAL" && !negate;
                    break;
                case "--to-destination":
                    rule.ToDestination = Arg(ref tokens, line, t, lineNo, names);
                    break;
                default:
                    break; // other matches and their arguments do not matter to the audit
            }

            negate = false;
        }

        return rule;
    }

    private static string Arg(ref Tokenizer tokens, ReadOnlySpan<char> line, ReadOnlySpan<char> option, int lineNo, Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> names, bool intern = false)
    {
        if (!tokens.Next(out var a, out var quoted))
        {
            throw new IptablesParseException(lineNo, $"option {option} has no value");
        }

        return Value(line, a, quoted, names, intern);
    }

    private static string Value(ReadOnlySpan<char> line, Range range, bool quoted, Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> names, bool intern)
    {
        var span = line[range];
        if (!quoted)
        {
            return intern ? Intern(names, span) : span.ToString();
        }

        return span.Contains('\\') ? Unescape(span) : span.ToString();
    }

    /// <summary>Inside double quotes a backslash escapes the next character.</summary>
    internal static string Unescape(ReadOnlySpan<char> span)
    {
        var sb = new StringBuilder(span.Length);
        for (var i = 0; i < span.Length; i++)
        {
            sb.Append(span[i] == '\\' && i + 1 < span.Length ? span[++i] : span[i]);
        }

        return sb.ToString();
    }

    private static string StripHostMask(string address) =>
        address.EndsWith("/32", StringComparison.Ordinal) ? address[..^3]
        : address.EndsWith("/128", StringComparison.Ordinal) ? address[..^4]
        : address;

    /// <summary>Yields token ranges of one line; a quoted token's range excludes its quotes (escapes still in it).</summary>
    private ref struct Tokenizer(ReadOnlySpan<char> line, int lineNo)
    {
        private readonly ReadOnlySpan<char> _line = line;
        private int _i;

        public bool Next(out Range range, out bool quoted)
        {
            while (_i < _line.Length && _line[_i] == ' ')
            {
                _i++;
            }

            if (_i >= _line.Length)
            {
                range = default;
                quoted = false;
                return false;
            }

            if (_line[_i] == '"')
            {
                var start = ++_i;
                while (_i < _line.Length)
                {
                    var c = _line[_i++];
                    if (c == '\\' && _i < _line.Length)
                    {
                        _i++;
                    }
                    else if (c == '"')
                    {
                        range = start..(_i - 1);
                        quoted = true;
                        return true;
                    }
                }

                throw new IptablesParseException(lineNo, "unterminated quote");
            }

            var from = _i;
            while (_i < _line.Length && _line[_i] != ' ')
            {
                _i++;
            }

            range = from.._i;
            quoted = false;
            return true;
        }
    }

    private static string Cut(ReadOnlySpan<char> s) => s.Length <= 60 ? s.ToString() : string.Concat(s[..60], "…");
}
