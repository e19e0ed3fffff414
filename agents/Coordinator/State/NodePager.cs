using System.Text;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// A page of nodes out of the name-ordered list: those after the continue token's name (ordinal), matching the states
/// and the name prefix asked, at most the limit. The token is the last name given, so a node present while the pages
/// are read is in exactly one page whatever is added or removed between them (a resourceVersion-less form of the
/// Kubernetes API's continue token); it is opaque to callers (base64url) and checked.
/// </summary>
public static class NodePager
{
    /// <summary>The most a page holds; a larger limit is served as this.</summary>
    public const int MaxLimit = 10_000;

    private const int MaxTokenLength = 512; // "n:" and a node name (a DNS name, at most 253 bytes), base64url

    /// <summary>The page, and the token for the next one (empty after the last node of the list).</summary>
    /// <param name="sorted">Every node's summary, ordered by name (ordinal).</param>
    public static (List<NodeSummary> Page, string Continue) Page(IReadOnlyList<NodeSummary> sorted, IReadOnlyCollection<NodeState> states, string namePrefix, int limit, string? after)
    {
        var start = after is null ? 0 : FirstAfter(sorted, after, orEqual: false);
        if (namePrefix.Length > 0)
        {
            start = Math.Max(start, FirstAfter(sorted, namePrefix, orEqual: true)); // the first name >= the prefix
        }

        var max = limit <= 0 ? int.MaxValue : Math.Min(limit, MaxLimit);
        var page = new List<NodeSummary>(Math.Min(max, Math.Max(0, sorted.Count - start)));
        var i = start;
        for (; i < sorted.Count && page.Count < max; i++)
        {
            var n = sorted[i];
            if (namePrefix.Length > 0 && !n.Name.StartsWith(namePrefix, StringComparison.Ordinal))
            {
                if (string.CompareOrdinal(n.Name, namePrefix) > 0)
                {
                    i = sorted.Count; // past every name with the prefix
                    break;
                }

                continue;
            }

            if (states.Count == 0 || states.Contains(n.State))
            {
                page.Add(n);
            }
        }

        var more = page.Count == max && i < sorted.Count;
        return (page, more ? Token(page[^1].Name) : string.Empty);
    }

    /// <summary>The name a continue token stands for, or null with the reason it is not one of ours.</summary>
    public static (string? Name, string? Problem) Read(string token)
    {
        if (token.Length == 0)
        {
            return (null, null);
        }

        if (token.Length > MaxTokenLength)
        {
            return (null, "continue token too long");
        }

        try
        {
            var b64 = token.Replace('-', '+').Replace('_', '/');
            b64 += new string('=', (4 - (b64.Length % 4)) % 4);
            var bytes = Convert.FromBase64String(b64);
            var text = new UTF8Encoding(false, true).GetString(bytes);
            return text.StartsWith("n:", StringComparison.Ordinal) && text.Length > 2
                ? (text[2..], null)
                : (null, "not a continue token of this coordinator");
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return (null, "not a continue token of this coordinator");
        }
    }

    public static string Token(string name) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes("n:" + name)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    // The first index whose name sorts after `after` (or, with orEqual, is not before it): a binary search (the name
    // itself may be gone by now).
    private static int FirstAfter(IReadOnlyList<NodeSummary> sorted, string after, bool orEqual)
    {
        int lo = 0, hi = sorted.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            var c = string.CompareOrdinal(sorted[mid].Name, after);
            if (orEqual ? c < 0 : c <= 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
