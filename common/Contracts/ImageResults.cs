namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// The words of ImageResult.result (issue 27 added the promotion's, the prune's and the security rebuild's) and the
/// bounds of a prune, shared by the builder that says them, the coordinator that checks them and agentctl that shows them.
/// </summary>
public static class ImageResults
{
    public const string SamePackages = "same-packages";
    public const string NoPackages = "no-packages";

    /// <summary>Whether <paramref name="result"/> is one that went as asked (built, pushed, judged not to push, promoted, pruned).</summary>
    public static bool IsOk(string result) =>
        result is "built" or "unchanged" or "pushed" or SamePackages or NoPackages or "promoted" or "pruned" or "would-prune";

    /// <summary>History tags a prune keeps per repository: 1 to this.</summary>
    public const int MaxKeep = 1000;

    /// <summary>History tags younger than this many days are kept: 0 (none) to this.</summary>
    public const int MaxKeepDays = 3650;

    /// <summary>The most digests one prune result names as deleted (more wait for the next prune).</summary>
    public const int MaxDeletedPerResult = 10_000;

    /// <summary>The longest reason a build takes.</summary>
    public const int MaxReason = 200;

    /// <summary>Whether <paramref name="revision"/> is a git commit id as git prints it (40 hex, or 64 for SHA-256 repositories).</summary>
    public static bool IsRevision(string revision) => revision.Length is 40 or 64 && revision.All(char.IsAsciiHexDigitLower);
}
