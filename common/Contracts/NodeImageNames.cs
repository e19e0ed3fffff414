using System.Text.RegularExpressions;

namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// The forms of a node's image names the coordinator takes (issue 27), one place for the agent that sends them and the
/// coordinator that checks them: an image id <c>sha256:&lt;64 hex&gt;</c> and a repo digest
/// <c>registry/path@sha256:&lt;64 hex&gt;</c> (a lower-case reference of at most 255 characters before the '@', as the
/// distribution reference grammar allows: letters, digits and . _ - / : for a port).
/// </summary>
public static partial class NodeImageNames
{
    [GeneratedRegex(@"^sha256:[0-9a-f]{64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex Id();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9._/:-]{0,254}@sha256:[0-9a-f]{64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex RepoDigest();

    public static bool IsImageId(string s) => Id().IsMatch(s);

    public static bool IsRepoDigest(string s) => RepoDigest().IsMatch(s);

    /// <summary>A node's repo digest entry: "registry/path@sha256:…", or the digest alone when the name was in no form we take.</summary>
    public static bool IsRepoDigestEntry(string s) => IsRepoDigest(s) || IsImageId(s);

    /// <summary>"registry/path@sha256:…" → ("registry/path", "sha256:…"); a digest alone → ("", "sha256:…").</summary>
    public static (string Repository, string Digest) Split(string repoDigest)
    {
        var at = repoDigest.LastIndexOf('@');
        return at < 0 ? (string.Empty, repoDigest) : (repoDigest[..at], repoDigest[(at + 1)..]);
    }
}
