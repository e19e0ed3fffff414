using System.Globalization;
using System.Net;
using System.Text;
using System.Buffers;
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

        /// <summary>Every jump/goto target in the chain's rules (vmap data included), and "@map" for each named verdict map it looks up.</summary>
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
    public static NftRuleset Parse(params string[] documents) => Parse(documents.Select(d => (string.Empty, d)));

    /// <summary>
    /// Parses named documents (an offline audit's "--nft-json FILE"): a problem is "NAME: what is wrong". The text of a
    /// document is never echoed back (a JSON parser's message quotes the token it stopped at, which for `nft list`'s text
    /// is most of the file).
    /// </summary>
    public static NftRuleset Parse(IEnumerable<(string Name, string Json)> documents)
    {
        var r = new NftRuleset();
        foreach (var (name, json) in documents)
        {
            var at = name.Length > 0 ? name + ": " : string.Empty;
            if (IsNftText(json))
            {
                throw new InvalidDataException($"{at}this is nft text, not JSON: use `nft -j list table ip kube-proxy` (and `nft -j list table ip6 kube-proxy`)");
            }

            var bytes = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(json.Length));
            try
            {
                var n = Encoding.UTF8.GetBytes(json, bytes);
                new NftJsonReader(r).Read(bytes.AsSpan(0, n));
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException(
                    $"{at}not nft JSON (a JSON syntax error at line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}): give what `nft -j list table ip kube-proxy` prints", ex);
            }
            catch (InvalidDataException ex) when (at.Length > 0)
            {
                throw new InvalidDataException(at + ex.Message, ex);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(bytes);
            }
        }

        return r;
    }

    /// <summary>What `nft list` prints (text: "table ip kube-proxy {", a comment, a flush) rather than `nft -j list` (JSON).</summary>
    public static bool IsNftText(string document)
    {
        var t = document.AsSpan().TrimStart();
        foreach (var start in (ReadOnlySpan<string>)["table ", "table\t", "#", "flush ", "add ", "delete "])
        {
            if (t.StartsWith(start, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    internal Chain ChainOf(string family, string name)
    {
        if (!Chains.TryGetValue((family, name), out var c))
        {
            Chains[(family, name)] = c = new Chain(name);
        }

        return c;
    }

    internal void CountRule() => RuleCount++;

    internal void CountElements(int n) => ElementCount += n;

    /// <summary>An address as kube-proxy writes it (<see cref="Kubernetes.IPAddresses.Canonical"/>).</summary>
    public static string CanonicalIP(string s) => Kubernetes.IPAddresses.Canonical(s);
}
