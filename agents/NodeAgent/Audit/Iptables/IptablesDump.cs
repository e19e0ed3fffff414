using System.Buffers.Text;
using System.Text;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>A problem in an iptables-save dump, naming the line.</summary>
public sealed class IptablesParseException(int line, string message) : Exception($"iptables-save line {line}: {message}")
{
    public int Line { get; } = line;
}

/// <summary>A part of the dump's text: start and length, or none (length -1).</summary>
internal readonly record struct Seg(int Start, int Length)
{
    public static readonly Seg None = new(0, -1);

    public bool IsNone => Length < 0;
}

[Flags]
internal enum RuleFlags : byte
{
    None = 0,
    SourceNegated = 1,
    DestinationNegated = 2,
    DestinationTypeLocal = 4,
    CommentEscaped = 8,
}

/// <summary>
/// One rule, as the audit keeps it: names as <see cref="NameTable"/> ids, values as parts of the dump's text. A value
/// type in one array: a 72,000-rule dump is one allocation, not 72,000 objects and their strings.
/// </summary>
internal struct RuleData
{
    public int Table;
    public int Chain;
    public int Line;
    public int Jump; // -1: none
    public int Protocol; // -1: none; lower case
    public int Port; // --dport as a number; -1: none or not a single port
    public Seg DestinationPort;
    public Seg Source;
    public Seg Destination; // without a /32 or /128 suffix
    public Seg ToDestination;
    public Seg Comment; // inside its quotes, escapes still in it
    public Seg Raw; // the rule after its chain name
    public RuleFlags Flags;
}

/// <summary>
/// One rule of an iptables-save dump, read by tokens rather than positions: kernel order
/// (<c>-d 10.96.0.1/32 -p tcp -m comment ... -m tcp --dport 443</c>) and kube-proxy's restore order
/// (<c>-m comment ... -m tcp -p tcp -d 10.96.0.1 --dport 443</c>) give the same rule. A view of the dump: its strings
/// are made when read (names are made once and shared).
/// </summary>
public readonly struct IptablesRule
{
    private readonly IptablesDump _dump;
    private readonly int _index;

    internal IptablesRule(IptablesDump dump, int index)
    {
        _dump = dump;
        _index = index;
    }

    private ref readonly RuleData D => ref _dump.RuleSpan[_index];

    public string Table => _dump.Names[D.Table];

    public string Chain => _dump.Names[D.Chain];

    public int Line => D.Line;

    public string? Source => _dump.Text(D.Source);

    public bool SourceNegated => (D.Flags & RuleFlags.SourceNegated) != 0;

    /// <summary>Destination without a /32 suffix.</summary>
    public string? Destination => _dump.Text(D.Destination);

    public bool DestinationNegated => (D.Flags & RuleFlags.DestinationNegated) != 0;

    public string? Protocol => D.Protocol < 0 ? null : _dump.Names[D.Protocol];

    public string? DestinationPort => _dump.Text(D.DestinationPort);

    /// <summary>The --comment value (kube-proxy's "namespace/name:port ...").</summary>
    public string? Comment => _dump.Comment(in D);

    public string? Jump => D.Jump < 0 ? null : _dump.Names[D.Jump];

    public bool DestinationTypeLocal => (D.Flags & RuleFlags.DestinationTypeLocal) != 0;

    public string? ToDestination => _dump.Text(D.ToDestination);

    /// <summary>The rule after its chain name, as the dump printed it.</summary>
    public string RawText => _dump.Text(D.Raw) ?? string.Empty;

    public override string ToString() => $"-t {Table} -A {Chain} {RawText}";
}

/// <summary>
/// A parsed iptables-save dump: chains per table and their rules, kept compactly (the dump's UTF-8 text, one array of
/// value-type rules, a table of names); see <see cref="RuleData"/>. Counters (<c>-c</c>) are tolerated.
/// </summary>
public sealed class IptablesDump
{
    private readonly byte[] _text;
    private RuleData[] _rules;
    private int _count;
    private readonly HashSet<long> _chains = [];
    private readonly List<(int Table, int Chain)> _chainOrder = [];

    private IptablesDump(byte[] text)
    {
        _text = text;
        _rules = [];
    }

    internal NameTable Names { get; } = new();

    /// <summary>The rules as the audit reads them (value types, in dump order).</summary>
    internal ReadOnlySpan<RuleData> RuleSpan => _rules.AsSpan(0, _count);

    internal ReadOnlySpan<byte> Bytes(Seg s) => s.IsNone ? default : _text.AsSpan(s.Start, s.Length);

    internal string? Text(Seg s) => s.IsNone ? null : Encoding.UTF8.GetString(_text, s.Start, s.Length);

    internal string? Comment(in RuleData r) =>
        r.Comment.IsNone ? null : (r.Flags & RuleFlags.CommentEscaped) != 0 ? Unescape(Encoding.UTF8.GetString(Bytes(r.Comment))) : Text(r.Comment);

    public IReadOnlyList<IptablesRule> Rules => new RuleList(this);

    public bool HasChain(string table, string chain) => Names.Find(table) is var t and >= 0 && Names.Find(chain) is var c and >= 0 && HasChain(t, c);

    internal bool HasChain(int table, int chain) => _chains.Contains(((long)table << 32) | (uint)chain);

    /// <summary>Every chain declared in the dump, of every table.</summary>
    public IEnumerable<string> Chains => _chainOrder.Select(c => Names[c.Chain]);

    private sealed class RuleList(IptablesDump dump) : IReadOnlyList<IptablesRule>
    {
        public IptablesRule this[int index] => (uint)index < (uint)dump._count ? new(dump, index) : throw new ArgumentOutOfRangeException(nameof(index));

        public int Count => dump._count;

        public IEnumerator<IptablesRule> GetEnumerator()
        {
            for (var i = 0; i < dump._count; i++)
            {
                yield return new IptablesRule(dump, i);
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public static IptablesDump Parse(string text) => Parse(Encoding.UTF8.GetBytes(text));

    /// <summary>Reads a dump's UTF-8 text (kept by the dump: values are read from it when asked for).</summary>
    public static IptablesDump Parse(byte[] utf8) => Parse(utf8, utf8.Length);

    /// <summary>Reads the first <paramref name="length"/> bytes of <paramref name="utf8"/>.</summary>
    public static IptablesDump Parse(byte[] utf8, int length)
    {
        var dump = new IptablesDump(utf8);
        var text = utf8.AsSpan(0, length);
        dump._rules = new RuleData[text.Count((byte)'\n') + 1]; // at most a rule a line: one array, never grown
        int table = -1;
        var lineNo = 0;
        var lastContent = 0;
        var pos = 0;
        while (pos < text.Length)
        {
            var nl = text[pos..].IndexOf((byte)'\n');
            var end = nl < 0 ? text.Length : pos + nl;
            var (start, stop) = Trim(text, pos, end);
            pos = end + 1;
            lineNo++;
            if (start == stop || text[start] == (byte)'#')
            {
                continue;
            }

            lastContent = lineNo;

            // iptables-save -c puts "[packets:bytes]" before each rule.
            if (text[start] == (byte)'[')
            {
                var close = text[start..stop].IndexOf((byte)']');
                if (close < 0)
                {
                    throw new IptablesParseException(lineNo, $"unterminated counter \"{Cut(text[start..stop])}\"");
                }

                (start, stop) = Trim(text, start + close + 1, stop);
                if (start == stop)
                {
                    throw new IptablesParseException(lineNo, "a counter without a rule");
                }
            }

            var line = text[start..stop];
            switch (line[0])
            {
                case (byte)'*':
                    var (ts, te) = Trim(text, start + 1, stop);
                    if (ts == te)
                    {
                        throw new IptablesParseException(lineNo, "table name missing after '*'");
                    }

                    table = dump.Names.GetOrAdd(text[ts..te]);
                    break;
                case (byte)':':
                    RequireTable(table, lineNo, line);
                    var afterColon = line[1..];
                    var space = afterColon.IndexOf((byte)' ');
                    var name = space < 0 ? afterColon : afterColon[..space];
                    if (name.Length == 0)
                    {
                        throw new IptablesParseException(lineNo, "chain name missing after ':'");
                    }

                    var chain = dump.Names.GetOrAdd(name);
                    if (dump._chains.Add(((long)table << 32) | (uint)chain))
                    {
                        dump._chainOrder.Add((table, chain));
                    }

                    break;
                case (byte)'-':
                    RequireTable(table, lineNo, line);
                    dump.ParseRule(table, start, stop, lineNo);
                    break;
                default:
                    if (line.SequenceEqual("COMMIT"u8))
                    {
                        table = -1;
                        break;
                    }

                    throw new IptablesParseException(lineNo, $"not an iptables-save line: \"{Cut(line)}\"");
            }
        }

        if (table >= 0)
        {
            throw new IptablesParseException(lastContent, $"table {dump.Names[table]} has no COMMIT (truncated dump?)");
        }

        return dump;
    }

    private static (int Start, int End) Trim(ReadOnlySpan<byte> text, int start, int end)
    {
        while (start < end && IsSpace(text[start]))
        {
            start++;
        }

        while (end > start && IsSpace(text[end - 1]))
        {
            end--;
        }

        return (start, end);
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private static void RequireTable(int table, int lineNo, ReadOnlySpan<byte> line)
    {
        if (table < 0)
        {
            throw new IptablesParseException(lineNo, $"\"{Cut(line)}\" outside a table (no '*table' line before it)");
        }
    }

    /// <summary>
    /// Reads a rule token by token without splitting the line or making a string: only positions and name ids are
    /// kept (chain, target and protocol names are shared between rules; a 70,000-rule dump repeats them all the time).
    /// </summary>
    private void ParseRule(int table, int start, int stop, int lineNo)
    {
        var line = _text.AsSpan(start, stop - start);
        var tokens = new Tokenizer(line, lineNo);
        if (!tokens.Next(out var first, out _) || !line[first].SequenceEqual("-A"u8) || !tokens.Next(out var chainRange, out _))
        {
            throw new IptablesParseException(lineNo, $"expected \"-A CHAIN ...\", got \"{Cut(line)}\"");
        }

        var (rawStart, rawEnd) = Trim(line, chainRange.End.GetOffset(line.Length), line.Length);
        var r = new RuleData
        {
            Table = table,
            Chain = Names.GetOrAdd(line[chainRange]),
            Line = lineNo,
            Jump = -1,
            Protocol = -1,
            Port = -1,
            DestinationPort = Seg.None,
            Source = Seg.None,
            Destination = Seg.None,
            ToDestination = Seg.None,
            Comment = Seg.None,
            Raw = new Seg(start + rawStart, rawEnd - rawStart),
        };
        var negate = false;
        while (tokens.Next(out var range, out _))
        {
            var t = line[range];
            if (t.Length == 1 && t[0] == (byte)'!')
            {
                negate = true;
                continue;
            }

            if (t.SequenceEqual("-d"u8) || t.SequenceEqual("--destination"u8))
            {
                r.Destination = StripHostMask(Arg(ref tokens, line, start, t, lineNo));
                r.Flags |= negate ? RuleFlags.DestinationNegated : RuleFlags.None;
            }
            else if (t.SequenceEqual("-p"u8) || t.SequenceEqual("--protocol"u8))
            {
                r.Protocol = Lower(Bytes(Arg(ref tokens, line, start, t, lineNo)));
            }
            else if (t.SequenceEqual("--dport"u8) || t.SequenceEqual("--destination-port"u8))
            {
                r.DestinationPort = Arg(ref tokens, line, start, t, lineNo);
                r.Port = Utf8Parser.TryParse(Bytes(r.DestinationPort), out int port, out var used) && used == r.DestinationPort.Length && port >= 0 ? port : -1;
            }
            else if (t.SequenceEqual("-j"u8) || t.SequenceEqual("--jump"u8) || t.SequenceEqual("-g"u8) || t.SequenceEqual("--goto"u8))
            {
                r.Jump = Names.GetOrAdd(Bytes(Arg(ref tokens, line, start, t, lineNo)));
            }
            else if (t.SequenceEqual("--comment"u8))
            {
                if (!tokens.Next(out var c, out var quoted))
                {
                    throw new IptablesParseException(lineNo, "option --comment has no value");
                }

                r.Comment = new Seg(start + c.Start.GetOffset(line.Length), line[c].Length);
                r.Flags |= quoted && line[c].Contains((byte)'\\') ? RuleFlags.CommentEscaped : RuleFlags.None;
            }
            else if (t.SequenceEqual("-s"u8) || t.SequenceEqual("--source"u8))
            {
                r.Source = StripHostMask(Arg(ref tokens, line, start, t, lineNo));
                r.Flags |= negate ? RuleFlags.SourceNegated : RuleFlags.None;
            }
            else if (t.SequenceEqual("--dst-type"u8))
            {
                var v = Arg(ref tokens, line, start, t, lineNo);
                r.Flags |= Bytes(v).SequenceEqual("LOCAL"u8) && !negate ? RuleFlags.DestinationTypeLocal : RuleFlags.None;
            }
            else if (t.SequenceEqual("--to-destination"u8))
            {
                r.ToDestination = Arg(ref tokens, line, start, t, lineNo);
            }

            // other matches and their arguments do not matter to the audit
            negate = false;
        }

        if (_count == _rules.Length)
        {
            Array.Resize(ref _rules, _count * 2);
        }

        _rules[_count++] = r;
    }

    /// <summary>A protocol's name id, lower case ("TCP" in a restore file is "tcp" in the kernel's listing).</summary>
    private int Lower(ReadOnlySpan<byte> name)
    {
        if (!name.ContainsAnyInRange((byte)'A', (byte)'Z') || name.Length > 64)
        {
            return Names.GetOrAdd(name);
        }

        Span<byte> lower = stackalloc byte[name.Length];
        for (var i = 0; i < name.Length; i++)
        {
            lower[i] = name[i] is >= (byte)'A' and <= (byte)'Z' ? (byte)(name[i] + 32) : name[i];
        }

        return Names.GetOrAdd(lower);
    }

    // A quoted value keeps its escapes: addresses, ports and names never have any; a comment's are undone when read.
    private static Seg Arg(ref Tokenizer tokens, ReadOnlySpan<byte> line, int lineStart, ReadOnlySpan<byte> option, int lineNo)
    {
        if (!tokens.Next(out var a, out _))
        {
            throw new IptablesParseException(lineNo, $"option {Encoding.UTF8.GetString(option)} has no value");
        }

        return new Seg(lineStart + a.Start.GetOffset(line.Length), line[a].Length);
    }

    private Seg StripHostMask(Seg s)
    {
        var b = Bytes(s);
        return b.EndsWith("/32"u8) ? s with { Length = s.Length - 3 } : b.EndsWith("/128"u8) ? s with { Length = s.Length - 4 } : s;
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

    /// <summary>Yields token ranges of one line; a quoted token's range excludes its quotes (escapes still in it).</summary>
    private ref struct Tokenizer(ReadOnlySpan<byte> line, int lineNo)
    {
        private readonly ReadOnlySpan<byte> _line = line;
        private int _i;

        public bool Next(out Range range, out bool quoted)
        {
            while (_i < _line.Length && _line[_i] == (byte)' ')
            {
                _i++;
            }

            if (_i >= _line.Length)
            {
                range = default;
                quoted = false;
                return false;
            }

            if (_line[_i] == (byte)'"')
            {
                var start = ++_i;
                while (_i < _line.Length)
                {
                    var c = _line[_i++];
                    if (c == (byte)'\\' && _i < _line.Length)
                    {
                        _i++;
                    }
                    else if (c == (byte)'"')
                    {
                        range = start..(_i - 1);
                        quoted = true;
                        return true;
                    }
                }

                throw new IptablesParseException(lineNo, "unterminated quote");
            }

            var from = _i;
            var next = _line[_i..].IndexOf((byte)' ');
            _i = next < 0 ? _line.Length : _i + next;
            range = from.._i;
            quoted = false;
            return true;
        }
    }

    private static string Cut(ReadOnlySpan<byte> s) =>
        s.Length <= 60 ? Encoding.UTF8.GetString(s) : string.Concat(Encoding.UTF8.GetString(s[..60]), "…");
}
