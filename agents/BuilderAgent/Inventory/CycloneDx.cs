using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>The image a document describes: its repository (registry/name, no tag) and the manifest digest pushed.</summary>
public sealed record BomSubject(string Repository, string Digest);

/// <summary>
/// Writes an image's package inventory as a CycloneDX 1.5 JSON document (bom-1.5.schema.json): <c>metadata.component</c>
/// is the image (type container, its repository as name, the digest as version, an OCI purl), each Debian package a
/// component of type library with purl <c>pkg:deb/debian/NAME@VERSION?arch=ARCH</c> (also its bom-ref: unique, as the
/// schema asks), and a package dpkg does not hold as fully installed (config-files, half-installed) carries its state as
/// the property <c>toolforge:dpkg:state</c>. Written with <see cref="Utf8JsonWriter"/>: no reflection, NativeAOT-clean.
/// </summary>
public static class CycloneDx
{
    public const string MediaType = "application/vnd.cyclonedx+json";

    public const string SpecVersion = "1.5";

    public const string StateProperty = "toolforge:dpkg:state";

    /// <summary>The property naming the lock file a language package comes from.</summary>
    public const string LockFileProperty = "toolforge:lockfile";

    /// <summary>The property saying the document lacks the image's language packages (its lock files could not be read), and why.</summary>
    public const string LanguageProblemProperty = "toolforge:language-packages-missing";

    public static byte[] Write(BomSubject subject, IReadOnlyList<DebPackage> packages, DateTimeOffset now, Guid serial, string toolVersion, IReadOnlyList<LanguagePackage>? language = null, string? languageProblem = null)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteString("bomFormat", "CycloneDX");
            w.WriteString("specVersion", SpecVersion);
            w.WriteString("serialNumber", "urn:uuid:" + serial.ToString("D"));
            w.WriteNumber("version", 1);
            w.WriteStartObject("metadata");
            w.WriteString("timestamp", now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteStartObject("tools");
            w.WriteStartArray("components");
            w.WriteStartObject();
            w.WriteString("type", "application");
            w.WriteString("name", "toolforge-builder-agent");
            w.WriteString("version", toolVersion);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("component");
            w.WriteString("type", "container");
            w.WriteString("bom-ref", ImagePurl(subject));
            w.WriteString("name", subject.Repository);
            w.WriteString("version", subject.Digest);
            w.WriteString("purl", ImagePurl(subject));
            w.WriteEndObject();
            if (languageProblem is not null)
            {
                Property(w, LanguageProblemProperty, languageProblem);
            }

            w.WriteEndObject();
            w.WriteStartArray("components");
            foreach (var p in packages)
            {
                Library(w, DebPurl(p), p.Name, p.Version, p.State != "installed" ? (StateProperty, p.State) : null);
            }

            foreach (var p in language ?? [])
            {
                Library(w, LanguagePurl(p), p.Name, p.Version, (LockFileProperty, p.LockFile));
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    // A component of type library, its purl as bom-ref (unique, as the schema asks), with one property when given.
    private static void Library(Utf8JsonWriter w, string purl, string name, string version, (string Name, string Value)? property)
    {
        w.WriteStartObject();
        w.WriteString("type", "library");
        w.WriteString("bom-ref", purl);
        w.WriteString("name", name);
        w.WriteString("version", version);
        w.WriteString("purl", purl);
        if (property is { } p)
        {
            Property(w, p.Name, p.Value);
        }

        w.WriteEndObject();
    }

    private static void Property(Utf8JsonWriter w, string name, string value)
    {
        w.WriteStartArray("properties");
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("value", value);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    /// <summary>pkg:deb/debian/NAME@VERSION?arch=ARCH (purl-spec's deb type; the version percent-encoded but for ':').</summary>
    public static string DebPurl(DebPackage p)
    {
        var s = new StringBuilder("pkg:deb/debian/").Append(Encode(p.Name));
        if (p.Version.Length > 0)
        {
            s.Append('@').Append(Encode(p.Version));
        }

        if (p.Architecture.Length > 0)
        {
            s.Append("?arch=").Append(Encode(p.Architecture));
        }

        return s.ToString();
    }

    /// <summary>
    /// purl-spec's type of each ecosystem: pkg:npm/[%40scope/]name@v, pkg:gem/name@v, pkg:composer/vendor/name@v,
    /// pkg:pypi/name@v (a namespace's '/' kept, everything else percent-encoded as purl asks).
    /// </summary>
    public static string LanguagePurl(LanguagePackage p) =>
        $"pkg:{p.Ecosystem}/{string.Join('/', p.Name.Split('/').Select(segment => Encode(segment)))}@{Encode(p.Version)}"
        + (p.Platform.Length > 0 ? "?platform=" + Encode(p.Platform) : string.Empty);

    /// <summary>pkg:oci/NAME@DIGEST?repository_url=REPOSITORY (purl-spec's oci type: the last path segment as name).</summary>
    public static string ImagePurl(BomSubject subject)
    {
        var name = subject.Repository[(subject.Repository.LastIndexOf('/') + 1)..].ToLowerInvariant();
        return $"pkg:oci/{Encode(name)}@{Uri.EscapeDataString(subject.Digest)}?repository_url={Encode(subject.Repository, "/")}";
    }

    private static string Encode(string s, string alsoKept = "")
    {
        var b = new StringBuilder(s.Length);
        foreach (var c in Encoding.UTF8.GetBytes(s))
        {
            if (char.IsAsciiLetterOrDigit((char)c) || c is (byte)'.' or (byte)'-' or (byte)'_' or (byte)'~' or (byte)':' || alsoKept.Contains((char)c, StringComparison.Ordinal))
            {
                b.Append((char)c);
            }
            else
            {
                b.Append('%').Append(c.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return b.ToString();
    }
}
