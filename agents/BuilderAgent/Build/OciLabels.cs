using System.Globalization;

namespace Toolforge.Agents.BuilderAgent.Build;

/// <summary>
/// The commit an image is built from and where it comes from (Url empty: not known). With <see cref="Files"/> (a
/// coordinator build's judged checkout: path → "mode blob" of the commit, under <see cref="Root"/>), each image's inputs
/// are checked again when it is built, and one whose files moved since carries no revision.
/// </summary>
public sealed record ImageSource(string Revision, string Url)
{
    public string? Root { get; init; }

    public IReadOnlyDictionary<string, string>? Files { get; init; }
}

/// <summary>The OCI annotation keys (opencontainers/image-spec annotations.md) the builder puts on every image as labels.</summary>
public static class OciLabels
{
    public const string Created = "org.opencontainers.image.created";
    public const string Revision = "org.opencontainers.image.revision";
    public const string Source = "org.opencontainers.image.source";

    /// <summary>The labels of one build: created (RFC 3339, UTC, seconds), and revision and source when built from git.</summary>
    public static Dictionary<string, string> For(ImageSource? source, DateTimeOffset now)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [Created] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        };
        if (source is not null)
        {
            labels[Revision] = source.Revision;
            if (source.Url.Length > 0)
            {
                labels[Source] = source.Url;
            }
        }

        return labels;
    }
}
