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

    public string? Comment { get; set; }

    public string? Jump { get; set; }

    public bool DestinationTypeLocal { get; set; }

    public string? ToDestination { get; set; }

    public string Text { get; init; } = string.Empty;

    public override string ToString() => $"-t {Table} -A {Chain} {Text}";
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

    public static IptablesDump Parse(string text)
    {
        var dump = new IptablesDump();
        string? table = null;
        var lineNo = 0;
        var lastContent = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNo++;
            var line = rawLine.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            lastContent = lineNo;

            // iptables-save -c puts "[packets:bytes]" before each rule.
            if (line[0] == '[')
            {
                var close = line.IndexOf(']', StringComparison.Ordinal);
                if (close < 0)
                {
                    throw new IptablesParseException(lineNo, $"unterminated counter \"{Cut(line)}\"");
                }

                line = line[(close + 1)..].TrimStart();
            }

            switch (line[0])
            {
                case '*':
                    table = line[1..].Trim();
                    if (table.Length == 0)
                    {
                        throw new IptablesParseException(lineNo, "table name missing after '*'");
                    }

                    dump._chains.TryAdd(table, new HashSet<string>(StringComparer.Ordinal));
                    break;
                case ':':
                    RequireTable(table, lineNo, line);
                    var name = line[1..].Split(' ', 2)[0];
                    if (name.Length == 0)
                    {
                        throw new IptablesParseException(lineNo, "chain name missing after ':'");
                    }

                    dump._chains[table!].Add(name);
                    break;
                case '-':
                    RequireTable(table, lineNo, line);
                    dump.Add(ParseRule(table!, line, lineNo));
                    break;
                default:
                    if (line == "COMMIT")
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

    private static void RequireTable(string? table, int lineNo, string line)
    {
        if (table is null)
        {
            throw new IptablesParseException(lineNo, $"\"{Cut(line)}\" outside a table (no '*table' line before it)");
        }
    }

    internal static IptablesRule ParseRule(string table, string line, int lineNo)
    {
        var tokens = Tokenize(line, lineNo);
        if (tokens.Count < 2 || tokens[0] != "-A")
        {
            throw new IptablesParseException(lineNo, $"expected \"-A CHAIN ...\", got \"{Cut(line)}\"");
        }

        var rule = new IptablesRule { Table = table, Chain = tokens[1], Line = lineNo, Text = string.Join(' ', tokens.Skip(2)) };
        var negate = false;
        for (var i = 2; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (t == "!")
            {
                negate = true;
                continue;
            }

            string Arg()
            {
                if (i + 1 >= tokens.Count)
                {
                    throw new IptablesParseException(lineNo, $"option {t} has no value");
                }

                return tokens[++i];
            }

            switch (t)
            {
                case "-s" or "--source":
                    rule.Source = StripHostMask(Arg());
                    rule.SourceNegated = negate;
                    break;
                case "-d" or "--destination":
                    rule.Destination = StripHostMask(Arg());
                    rule.DestinationNegated = negate;
                    break;
                case "-p" or "--protocol":
                    rule.Protocol = Arg().ToLowerInvariant();
                    break;
                case "--dport" or "--destination-port":
                    rule.DestinationPort = Arg();
                    break;
                case "--comment":
                    rule.Comment = Arg();
                    break;
                case "-j" or "--jump" or "-g" or "--goto":
                    rule.Jump = Arg();
                    break;
                case "--dst-type":
                    rule.DestinationTypeLocal = Arg() == "LOCAL" && !negate;
                    break;
                case "--to-destination":
                    rule.ToDestination = Arg();
                    break;
                default:
                    break; // other matches and their arguments do not matter to the audit
            }

            negate = false;
        }

        return rule;
    }

    private static string StripHostMask(string address) =>
        address.EndsWith("/32", StringComparison.Ordinal) ? address[..^3]
        : address.EndsWith("/128", StringComparison.Ordinal) ? address[..^4]
        : address;

    /// <summary>Splits like iptables-save quotes: double quotes group, backslash escapes inside them.</summary>
    internal static List<string> Tokenize(string line, int lineNo)
    {
        var tokens = new List<string>(24);
        var i = 0;
        var sb = new StringBuilder();
        while (i < line.Length)
        {
            while (i < line.Length && line[i] == ' ')
            {
                i++;
            }

            if (i >= line.Length)
            {
                break;
            }

            sb.Clear();
            if (line[i] == '"')
            {
                i++;
                var closed = false;
                while (i < line.Length)
                {
                    var c = line[i++];
                    if (c == '\\' && i < line.Length)
                    {
                        sb.Append(line[i++]);
                    }
                    else if (c == '"')
                    {
                        closed = true;
                        break;
                    }
                    else
                    {
                        sb.Append(c);
                    }
                }

                if (!closed)
                {
                    throw new IptablesParseException(lineNo, "unterminated quote");
                }
            }
            else
            {
                var start = i;
                while (i < line.Length && line[i] != ' ')
                {
                    i++;
                }

                sb.Append(line, start, i - start);
            }

            tokens.Add(sb.ToString());
        }

        return tokens;
    }

    private static string Cut(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
