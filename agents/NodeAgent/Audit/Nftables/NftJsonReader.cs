using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// Reads one `nft -j list table ...` document into an <see cref="NftRuleset"/> in one forward pass over its UTF-8
/// (no document tree: a 10,000-Service table lists as some 22 MB of JSON). Only what the audit compares is kept:
/// tables named kube-proxy, their chains, sets and maps with their elements, and per rule its jump/goto targets, its
/// numgen vmap and its DNAT; everything else is skipped. Property order within an object does not matter.
/// </summary>
internal sealed class NftJsonReader(NftRuleset into)
{
    // The helper chains every per-service chain jumps to, returned without a new string per rule.
    private static readonly string[] CommonTargets = ["mark-for-masquerade", "reject-chain", "services", "masquerading"];

    private readonly List<string> _targets = [];
    private readonly List<string> _numgenTargets = [];
    private readonly List<string> _dnats = [];
    private int? _numgenMod;
    private NftRuleset.Chain? _lastChain;
    private string? _lastFamily;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Read(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
        {
            throw new InvalidDataException("not nft JSON: no top-level \"nftables\" list (give what `nft -j list table ip kube-proxy` prints)");
        }

        var found = false;
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (k.SequenceEqual("nftables"u8) && r.TokenType == JsonTokenType.StartArray)
            {
                found = true;
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    Item(ref r);
                }
            }
            else
            {
                r.Skip();
            }
        }

        if (!found)
        {
            throw new InvalidDataException("not nft JSON: no top-level \"nftables\" list (give what `nft -j list table ip kube-proxy` prints)");
        }
    }

    // Positioned on a property name: its name (a slice of the input; nft never escapes its names), and on to its value.
    private static ReadOnlySpan<byte> Key(ref Utf8JsonReader r)
    {
        var name = r.ValueIsEscaped ? Encoding.UTF8.GetBytes(r.GetString()!) : r.ValueSpan;
        r.Read();
        return name;
    }

    // On to the next property name of the current object; false at its end.
    private static bool NextIs(ref Utf8JsonReader r, out bool end)
    {
        end = !r.Read() || r.TokenType == JsonTokenType.EndObject;
        return !end;
    }

    // {"<kind>": {...}}
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Item(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartObject)
        {
            r.Skip();
            return;
        }

        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            var kind = k.SequenceEqual("rule"u8) ? 'r' : k.SequenceEqual("chain"u8) ? 'c' : k.SequenceEqual("set"u8) ? 's'
                : k.SequenceEqual("map"u8) ? 'm' : k.SequenceEqual("table"u8) ? 't' : '?';
            if (r.TokenType != JsonTokenType.StartObject)
            {
                r.Skip();
                continue;
            }

            switch (kind)
            {
                case 'r':
                    Rule(ref r);
                    break;
                case 'c' or 't':
                    ChainOrTable(ref r, kind == 't');
                    break;
                case 's' or 'm':
                    SetOrMap(ref r, kind == 'm');
                    break;
                default:
                    r.Skip();
                    break;
            }
        }
    }

    /// <summary>
    /// The fields every listed object carries: its family, whether its table is kube-proxy's, its name. True when
    /// <paramref name="k"/> was one of them (and its value read).
    /// </summary>
    private static bool Head(scoped ReadOnlySpan<byte> k, ref Utf8JsonReader r, ref string family, ref bool mine, ref string? name)
    {
        if (r.TokenType != JsonTokenType.String)
        {
            return false;
        }

        if (k.SequenceEqual("family"u8))
        {
            family = Family(ref r);
        }
        else if (k.SequenceEqual("table"u8))
        {
            mine = r.ValueTextEquals("kube-proxy"u8);
        }
        else if (k.SequenceEqual("name"u8))
        {
            name = r.GetString();
        }
        else
        {
            return false;
        }

        return true;
    }

    private static string Family(ref Utf8JsonReader r) =>
        r.ValueTextEquals("ip"u8) ? "ip" : r.ValueTextEquals("ip6"u8) ? "ip6" : r.GetString() ?? "ip";

    private void ChainOrTable(ref Utf8JsonReader r, bool table)
    {
        var (family, name, mine) = ("ip", (string?)null, false);
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (Head(k, ref r, ref family, ref mine, ref name))
            {
                continue;
            }

            r.Skip();
        }

        if (table && name == "kube-proxy")
        {
            into.Families.Add(family);
        }
        else if (!table && mine && name is not null)
        {
            into.ChainOf(family, name);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Rule(ref Utf8JsonReader r)
    {
        _targets.Clear();
        _numgenTargets.Clear();
        _dnats.Clear();
        _numgenMod = null;
        var (family, mine) = ("ip", false);
        NftRuleset.Chain? chain = null;
        string? chainName = null;
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            string? unused = null; // a rule has no name of its own
            if (Head(k, ref r, ref family, ref mine, ref unused))
            {
                continue;
            }

            if (k.SequenceEqual("chain"u8) && r.TokenType == JsonTokenType.String)
            {
                // A chain's rules come one after another: the last chain again costs no string.
                if (_lastChain is { } last && r.ValueTextEquals(last.Name))
                {
                    chain = last;
                }
                else
                {
                    chainName = r.GetString();
                }
            }
            else if (k.SequenceEqual("expr"u8) && r.TokenType == JsonTokenType.StartArray)
            {
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    Expression(ref r);
                }
            }
            else
            {
                r.Skip();
            }
        }

        if (!mine || (chain is null && chainName is null))
        {
            return;
        }

        chain = chain is not null && _lastFamily == family ? chain : into.ChainOf(family, chainName ?? chain!.Name);
        (_lastChain, _lastFamily) = (chain, family);
        chain.Rules++;
        into.CountRule();
        chain.Targets.UnionWith(_targets);
        chain.NumgenTargets.AddRange(_numgenTargets);
        chain.Dnats.AddRange(_dnats);
        chain.NumgenMod = _numgenMod ?? chain.NumgenMod;
    }

    // One statement: {"jump": {...}}, {"dnat": {...}}, {"vmap": {...}}, or anything else (skipped).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Expression(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartObject)
        {
            r.Skip();
            return;
        }

        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            var jump = k.SequenceEqual("jump"u8) || k.SequenceEqual("goto"u8);
            var dnat = !jump && k.SequenceEqual("dnat"u8);
            var vmap = !jump && !dnat && k.SequenceEqual("vmap"u8);
            if (jump)
            {
                if (Target(ref r) is { } t)
                {
                    _targets.Add(t);
                }
            }
            else if (dnat && r.TokenType == JsonTokenType.StartObject)
            {
                Dnat(ref r);
            }
            else if (vmap && r.TokenType == JsonTokenType.StartObject)
            {
                Vmap(ref r);
            }
            else
            {
                r.Skip();
            }
        }
    }

    // {"target": "name"} (the value of a jump or goto).
    private static string? Target(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartObject)
        {
            r.Skip();
            return null;
        }

        string? target = null;
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (k.SequenceEqual("target"u8) && r.TokenType == JsonTokenType.String)
            {
                target = Common(ref r) ?? r.GetString();
            }
            else
            {
                r.Skip();
            }
        }

        return target;
    }

    private static string? Common(ref Utf8JsonReader r)
    {
        foreach (var c in CommonTargets)
        {
            if (r.ValueTextEquals(c))
            {
                return c;
            }
        }

        return null;
    }

    private void Dnat(ref Utf8JsonReader r)
    {
        string? addr = null;
        var port = 0;
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (k.SequenceEqual("addr"u8) && r.TokenType == JsonTokenType.String)
            {
                addr = r.GetString();
            }
            else if (k.SequenceEqual("port"u8) && r.TokenType == JsonTokenType.Number)
            {
                port = r.TryGetInt32(out var p) ? p : 0;
            }
            else
            {
                r.Skip();
            }
        }

        if (addr is not null)
        {
            _dnats.Add($"{NftRuleset.CanonicalIP(addr)}:{port.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    // {"key": {"numgen": {"mod": N, ...}} or another key, "data": {"set": [[k, {"goto": {...}}], ...]} or "@map"}
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Vmap(ref Utf8JsonReader r)
    {
        var numgen = false;
        int? mod = null;
        var targets = new List<string>();
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (k.SequenceEqual("key"u8) && r.TokenType == JsonTokenType.StartObject)
            {
                while (NextIs(ref r, out _))
                {
                    var k2 = Key(ref r);
                    if (k2.SequenceEqual("numgen"u8) && r.TokenType == JsonTokenType.StartObject)
                    {
                        numgen = true;
                        while (NextIs(ref r, out _))
                        {
                            var k3 = Key(ref r);
                            if (k3.SequenceEqual("mod"u8) && r.TokenType == JsonTokenType.Number && r.TryGetInt32(out var m))
                            {
                                mod = m;
                            }
                            else
                            {
                                r.Skip();
                            }
                        }
                    }
                    else
                    {
                        r.Skip();
                    }
                }
            }
            else if (k.SequenceEqual("data"u8) && r.TokenType == JsonTokenType.String)
            {
                // "@service-ips": a lookup in a named map, kept as a target "@name" (what the services chain must hold).
                if (r.GetString() is ['@', ..] named)
                {
                    _targets.Add(named);
                }
            }
            else if (k.SequenceEqual("data"u8) && r.TokenType == JsonTokenType.StartObject)
            {
                while (NextIs(ref r, out _))
                {
                    var k2 = Key(ref r);
                    if (k2.SequenceEqual("set"u8) && r.TokenType == JsonTokenType.StartArray)
                    {
                        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                        {
                            if (Pair(ref r) is { } pair && VerdictTarget(pair.Verdict) is { } t)
                            {
                                targets.Add(t);
                            }
                        }
                    }
                    else
                    {
                        r.Skip();
                    }
                }
            }
            else
            {
                r.Skip();
            }
        }

        _targets.AddRange(targets);
        if (numgen)
        {
            _numgenTargets.AddRange(targets);
            _numgenMod = mod ?? _numgenMod;
        }
    }

    private static string? VerdictTarget(string verdict) =>
        verdict.StartsWith("goto ", StringComparison.Ordinal) || verdict.StartsWith("jump ", StringComparison.Ordinal) ? verdict[5..] : null;

    // [key, verdict] → the key as "a . b . c" and its comment, and the verdict as "goto X" / "drop".
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (string Key, string? Comment, string Verdict)? Pair(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartArray)
        {
            r.Skip();
            return null;
        }

        var values = new List<(string Key, string? Comment)>(2);
        string? verdict = null;
        var i = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (i++ == 0)
            {
                values.Add(Element(ref r));
            }
            else
            {
                verdict = Verdict(ref r);
            }
        }

        return i == 2 && verdict is not null ? (values[0].Key, values[0].Comment, verdict) : null;
    }

    // "goto X", "jump X", or the bare verdict ("drop", "accept", ...).
    private static string Verdict(ref Utf8JsonReader r)
    {
        if (r.TokenType == JsonTokenType.String)
        {
            return r.GetString()!;
        }

        if (r.TokenType != JsonTokenType.StartObject)
        {
            return Raw(ref r);
        }

        string? verdict = null;
        while (NextIs(ref r, out _))
        {
            var name = r.GetString()!;
            r.Read();
            if (verdict is not null)
            {
                r.Skip();
                continue;
            }

            var target = r.TokenType == JsonTokenType.StartObject ? Target(ref r) : Skipped(ref r);
            verdict = target is null ? name : $"{name} {target}";
        }

        return verdict ?? "{}";
    }

    private static string? Skipped(ref Utf8JsonReader r)
    {
        r.Skip();
        return null;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SetOrMap(ref Utf8JsonReader r, bool map)
    {
        var (family, mine) = ("ip", false);
        string? name = null;
        var set = new List<string>();
        var elements = new List<NftRuleset.MapElement>();
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (Head(k, ref r, ref family, ref mine, ref name))
            {
                continue;
            }

            if (k.SequenceEqual("elem"u8) && r.TokenType == JsonTokenType.StartArray)
            {
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    if (!map)
                    {
                        set.Add(Element(ref r).Key);
                    }
                    else if (Pair(ref r) is { } pair)
                    {
                        elements.Add(new NftRuleset.MapElement(pair.Key, pair.Verdict, pair.Comment));
                    }
                    else
                    {
                        throw new InvalidDataException($"map {name ?? "?"}: an element that is not [key, verdict] (at byte {r.TokenStartIndex.ToString(CultureInfo.InvariantCulture)})");
                    }
                }
            }
            else
            {
                r.Skip();
            }
        }

        if (!mine || name is null)
        {
            return;
        }

        if (map)
        {
            var m = into.Maps[(family, name)] = new Dictionary<string, NftRuleset.MapElement>(elements.Count, StringComparer.Ordinal);
            foreach (var e in elements)
            {
                m[e.Key] = e;
            }

            into.CountElements(elements.Count);
        }
        else
        {
            into.Sets[(family, name)] = new HashSet<string>(set, StringComparer.Ordinal);
            into.CountElements(set.Count);
        }
    }

    // An element: "addr", 80, {"concat": [...]}, {"prefix": {"addr", "len"}}, or {"elem": {"val": ..., "comment": ...}}.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (string Key, string? Comment) Element(ref Utf8JsonReader r)
    {
        switch (r.TokenType)
        {
            case JsonTokenType.String:
                return (NftRuleset.CanonicalIP(r.GetString()!), null);
            case JsonTokenType.Number:
                return (Encoding.UTF8.GetString(r.ValueSpan), null);
            case JsonTokenType.StartObject:
                break;
            default:
                return (Raw(ref r), null);
        }

        var start = r.TokenStartIndex;
        string? key = null;
        string? comment = null;
        while (NextIs(ref r, out _))
        {
            var k = Key(ref r);
            if (k.SequenceEqual("concat"u8) && r.TokenType == JsonTokenType.StartArray)
            {
                var sb = new StringBuilder();
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    sb.Append(sb.Length > 0 ? " . " : string.Empty).Append(Element(ref r).Key);
                }

                key = sb.ToString();
            }
            else if (k.SequenceEqual("prefix"u8) && r.TokenType == JsonTokenType.StartObject)
            {
                var (addr, len) = ("?", "?");
                while (NextIs(ref r, out _))
                {
                    var k2 = Key(ref r);
                    if (k2.SequenceEqual("addr"u8) && r.TokenType == JsonTokenType.String)
                    {
                        addr = NftRuleset.CanonicalIP(r.GetString()!);
                    }
                    else if (k2.SequenceEqual("len"u8) && r.TokenType == JsonTokenType.Number)
                    {
                        len = Encoding.UTF8.GetString(r.ValueSpan);
                    }
                    else
                    {
                        r.Skip();
                    }
                }

                key = $"{addr}/{len}";
            }
            else if (k.SequenceEqual("elem"u8) && r.TokenType == JsonTokenType.StartObject)
            {
                while (NextIs(ref r, out _))
                {
                    var k2 = Key(ref r);
                    if (k2.SequenceEqual("val"u8))
                    {
                        key = Element(ref r).Key;
                    }
                    else if (k2.SequenceEqual("comment"u8) && r.TokenType == JsonTokenType.String)
                    {
                        comment = r.GetString();
                    }
                    else
                    {
                        r.Skip();
                    }
                }
            }
            else
            {
                r.Skip();
            }
        }

        return (key ?? $"{{object at byte {start.ToString(CultureInfo.InvariantCulture)}}}", comment);
    }

    // A value that is neither string, number nor object, written as JSON would (true, null, [...]).
    private static string Raw(ref Utf8JsonReader r)
    {
        var text = r.TokenType switch
        {
            JsonTokenType.True => "true",
            JsonTokenType.False => "false",
            JsonTokenType.Null => "null",
            _ => "[...]",
        };
        r.Skip();
        return text;
    }
}
