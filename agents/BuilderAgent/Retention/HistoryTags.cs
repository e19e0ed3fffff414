using System.Globalization;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.BuilderAgent.Retention;

/// <summary>
/// The builder's history tags (issue 27): every digest the daemon pushes as <c>testing</c> also gets
/// <c>build-YYYYMMDD-HHMMSS-&lt;12 hex of the digest&gt;</c> (UTC, the push's time), so the registry keeps a dated,
/// listable record of each build — what <c>agentctl images prune --keep N</c> counts and deletes. The digest's prefix
/// makes two pushes in one second of different images two tags; the time makes the names sort as the builds ran.
/// </summary>
public static partial class HistoryTags
{
    public const string Prefix = "build-";

    [GeneratedRegex(@"^build-([0-9]{8}-[0-9]{6})-[0-9a-f]{12}\z", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    /// <summary>The history tag of <paramref name="digest"/> pushed at <paramref name="at"/>.</summary>
    public static string For(DateTimeOffset at, string digest)
    {
        var hex = Common.Contracts.NodeImageNames.IsImageId(digest) ? digest[7..19] : throw new ArgumentException($"not a sha256 digest: {digest}", nameof(digest));
        return $"{Prefix}{at.UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{hex}";
    }

    /// <summary>When a history tag's build ran, or null when <paramref name="tag"/> is not one of ours.</summary>
    public static DateTimeOffset? When(string tag)
    {
        var m = Pattern().Match(tag);
        return m.Success && DateTimeOffset.TryParseExact(m.Groups[1].Value, "yyyyMMdd-HHmmss", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at) ? at : null;
    }
}
