using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>
/// What `nft -j list table ip kube-proxy` (and `ip6`) print, kept in the form the audit compares: the table's sets
/// (element strings), verdict maps (key → verdict), and per chain the targets it jumps or goes to, its numgen vmap and
/// its DNAT. Keys are written "addr . proto . port" (or "proto . port") with canonical addresses, so element order,
/// rule text, handles and priorities do not matter.
/// </summary>
public sealed class NftRuleset
{
    public sealed class Chain(string name)
    {
        public string Name { get; } = name;

        public int Rules { get; set; }

        /// <summary>Every jump/goto target in the chain's rules (vmap data included).</summary>
        public HashSet<string> Targets { get; } = new(StringComparer.Ordinal);

        /// <summary>The endpoint chains of `numgen random mod N vmap { ... }`, and N.</summary>
        public List<string> NumgenTargets { get; } = [];

        public int? NumgenMod { get; set; }

        /// <summary>"address:port" of each `dnat to`.</summary>
        public List<string> Dnats { get; } = [];
    }

    public sealed record MapElement(string Key, string Verdict, string? Comment);

    /// <summary>The families whose kube-proxy table the documents held: "ip", "ip6".</summary>
    public HashSet<string> Families { get; } = new(StringComparer.Ordinal);

    public Dictionary<(string Family, string Name), HashSet<string>> Sets { get; } = [];

    public Dictionary<(string Family, string Name), Dictionary<string, MapElement>> Maps { get; } = [];

    public Dictionary<(string Family, string Name), Chain> Chains { get; } = [];

    public int RuleCount { get; private set; }

    public int ElementCount { get; private set; }

    /// <summary>Parses one or more `nft -j` documents (an ip and an ip6 listing); throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static NftRuleset Parse(params string[] documents)
    {
        var r = new NftRuleset();
        foreach (var json in documents)
        {
            r.Add(json);
        }

        return r;
    }

    private void Add(string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"not nft JSON (nft -j list table ip kube-proxy): {ex.Message}", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("nftables", out var items) || items.ValueKind != JsonValueKind.Array)
            {
                throw new InvalidDataException("not nft JSON: no top-level \"nftables\" list (give what `nft -j list table ip kube-proxy` prints)");
            }

            foreach (var item in items.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                if (item.TryGetProperty("table", out var t) && Str(t, "name") == "kube-proxy")
                {
                    Families.Add(Str(t, "family") ?? "ip");
                }
                else if (item.TryGetProperty("chain", out var c) && Mine(c, out var family, out var name))
                {
                    ChainOf(family, name);
                }
                else if (item.TryGetProperty("set", out var s) && Mine(s, out family, out name))
                {
                    var elements = Sets[(family, name)] = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var e in Elements(s))
                    {
                        elements.Add(Key(Unwrap(e, out _)));
                        ElementCount++;
                    }
                }
                else if (item.TryGetProperty("map", out var m) && Mine(m, out family, out name))
                {
                    var elements = Maps[(family, name)] = new Dictionary<string, MapElement>(StringComparer.Ordinal);
                    foreach (var e in Elements(m))
                    {
                        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != 2)
                        {
                            throw new InvalidDataException($"map {name}: an element that is not [key, verdict]: {Cut(e.GetRawText())}");
                        }

                        var key = Key(Unwrap(e[0], out var comment));
                        elements[key] = new MapElement(key, Verdict(e[1]), comment);
                        ElementCount++;
                    }
                }
                else if (item.TryGetProperty("rule", out var rule) && Mine(rule, out family, out _) && Str(rule, "chain") is { } chain)
                {
                    var ch = ChainOf(family, chain);
                    ch.Rules++;
                    RuleCount++;
                    if (rule.TryGetProperty("expr", out var expr) && expr.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var x in expr.EnumerateArray())
                        {
                            Expression(ch, x);
                        }
                    }
                }
            }
        }
    }

    private Chain ChainOf(string family, string name)
    {
        if (!Chains.TryGetValue((family, name), out var c))
        {
            Chains[(family, name)] = c = new Chain(name);
        }

        return c;
    }

    private static void Expression(Chain chain, JsonElement x)
    {
        if (x.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        foreach (var kind in new[] { "jump", "goto" })
        {
            if (x.TryGetProperty(kind, out var j) && Str(j, "target") is { } target)
            {
                chain.Targets.Add(target);
            }
        }

        if (x.TryGetProperty("dnat", out var dnat) && Str(dnat, "addr") is { } addr)
        {
            var port = dnat.TryGetProperty("port", out var p) && p.TryGetInt32(out var n) ? n : 0;
            chain.Dnats.Add($"{CanonicalIP(addr)}:{port.ToString(CultureInfo.InvariantCulture)}");
        }

        if (x.TryGetProperty("vmap", out var vmap) && vmap.TryGetProperty("data", out var data))
        {
            var numgen = vmap.TryGetProperty("key", out var key) && key.ValueKind == JsonValueKind.Object && key.TryGetProperty("numgen", out var ng) ? ng : (JsonElement?)null;
            if (data.ValueKind == JsonValueKind.Object && data.TryGetProperty("set", out var set) && set.ValueKind == JsonValueKind.Array)
            {
                foreach (var pair in set.EnumerateArray())
                {
                    if (pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() == 2 && Target(pair[1]) is { } t)
                    {
                        chain.Targets.Add(t);
                        if (numgen is not null)
                        {
                            chain.NumgenTargets.Add(t);
                        }
                    }
                }
            }

            if (numgen is { } g && g.TryGetProperty("mod", out var mod) && mod.TryGetInt32(out var m))
            {
                chain.NumgenMod = m;
            }
        }
    }

    private static string? Target(JsonElement verdict)
    {
        foreach (var kind in new[] { "goto", "jump" })
        {
            if (verdict.ValueKind == JsonValueKind.Object && verdict.TryGetProperty(kind, out var j) && Str(j, "target") is { } t)
            {
                return t;
            }
        }

        return null;
    }

    /// <summary>"goto X", "jump X", or the bare verdict ("drop", "accept", ...).</summary>
    private static string Verdict(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in v.EnumerateObject())
            {
                return p.Value.ValueKind == JsonValueKind.Object && Str(p.Value, "target") is { } t ? $"{p.Name} {t}" : p.Name;
            }
        }

        return v.ToString();
    }

    private static bool Mine(JsonElement o, out string family, out string name)
    {
        family = Str(o, "family") ?? "ip";
        name = Str(o, "name") ?? string.Empty;
        return Str(o, "table") == "kube-proxy";
    }

    private static IEnumerable<JsonElement> Elements(JsonElement setOrMap) =>
        setOrMap.TryGetProperty("elem", out var e) && e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : [];

    // {"elem": {"val": ..., "comment": ...}} around a value when it carries a comment.
    private static JsonElement Unwrap(JsonElement e, out string? comment)
    {
        comment = null;
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("elem", out var inner) && inner.ValueKind == JsonValueKind.Object && inner.TryGetProperty("val", out var val))
        {
            comment = Str(inner, "comment");
            return val;
        }

        return e;
    }

    /// <summary>"addr . proto . port" from {"concat": [...]}, a plain address, or a prefix.</summary>
    private static string Key(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("concat", out var parts) && parts.ValueKind == JsonValueKind.Array)
        {
            var sb = new StringBuilder();
            foreach (var p in parts.EnumerateArray())
            {
                if (sb.Length > 0)
                {
                    sb.Append(" . ");
                }

                sb.Append(Scalar(p));
            }

            return sb.ToString();
        }

        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("prefix", out var prefix))
        {
            return $"{CanonicalIP(Str(prefix, "addr") ?? "?")}/{(prefix.TryGetProperty("len", out var l) ? l.ToString() : "?")}";
        }

        return Scalar(e);
    }

    private static string Scalar(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => CanonicalIP(e.GetString()!),
        JsonValueKind.Number => e.GetRawText(),
        _ => e.GetRawText(),
    };

    /// <summary>
    /// An address as kube-proxy writes it: IPv4 octets read as decimal even with leading zeros (the API may hold
    /// 172.30.0.041, which is 41, as Kubernetes' sloppy parser reads it), IPv6 in its canonical form; anything else as is.
    /// </summary>
    public static string CanonicalIP(string s)
    {
        if (s.Contains(':', StringComparison.Ordinal))
        {
            return IPAddress.TryParse(s, out var v6) ? v6.ToString() : s;
        }

        var parts = s.Split('.');
        if (parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit)))
        {
            var octets = parts.Select(p => int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            if (octets.All(o => o <= 255))
            {
                return string.Join('.', octets);
            }
        }

        return s;
    }

    private static string? Str(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string Cut(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
