using System.Text.Json;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>A content descriptor (OCI image-spec descriptor.md): media type, digest, size, and for a referrer its artifact type.</summary>
public sealed record OciDescriptor(string MediaType, string Digest, long Size, string? ArtifactType = null, IReadOnlyDictionary<string, string>? Annotations = null);

/// <summary>
/// The documents that keep an inventory beside its image (OCI image-spec 1.1, distribution-spec 1.1), without I/O:
/// the artifact manifest (an image manifest with <c>artifactType</c> application/vnd.cyclonedx+json, the empty config,
/// the document as its one layer, and <c>subject</c> = the image's manifest), and — for a registry without the
/// referrers API, as Debian's docker-registry 2.8 — the referrers tag schema's index: tag <c>sha256-&lt;hex&gt;</c> of
/// the subject, an image index listing every referrer of the subject, to which a client adds its own descriptor
/// (read, add, write back; one already listed is not listed twice, the others are kept).
/// </summary>
public static class OciReferrers
{
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";
    public const string EmptyMediaType = "application/vnd.oci.empty.v1+json";
    public const string CreatedAnnotation = "org.opencontainers.image.created";

    /// <summary>
    /// Marks the index entries this builder adds (value: the kind of inventory, "dpkg"): a later inventory of the same
    /// digest replaces the earlier one instead of adding beside it, so the index does not grow with every publish.
    /// </summary>
    public const string InventoryAnnotation = "org.toolforge.builder.inventory";

    /// <summary>The empty descriptor's content, <c>{}</c> (image-spec manifest.md "Guidance for an Empty Descriptor").</summary>
    public static readonly byte[] EmptyConfig = "{}"u8.ToArray();

    /// <summary>sha256-&lt;hex&gt;: the referrers tag schema's tag for <paramref name="subjectDigest"/> (algorithm, "-", the hex cut to 64).</summary>
    public static string FallbackTag(string subjectDigest)
    {
        var colon = subjectDigest.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !subjectDigest[(colon + 1)..].All(char.IsAsciiHexDigitLower))
        {
            throw new InventoryException($"\"{DpkgStatus.Safe(subjectDigest)}\" is not a digest");
        }

        var hex = subjectDigest[(colon + 1)..];
        return $"{subjectDigest[..colon]}-{(hex.Length > 64 ? hex[..64] : hex)}";
    }

    /// <summary>The artifact manifest for <paramref name="document"/> (a blob of <paramref name="documentMediaType"/>) referring to <paramref name="subject"/>.</summary>
    public static Manifest ArtifactManifest(OciDescriptor subject, OciDescriptor document, string created)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", ImageManifest);
            w.WriteString("artifactType", document.MediaType);
            w.WriteStartObject("config");
            Descriptor(w, new OciDescriptor(EmptyMediaType, RegistryClient.Digest(EmptyConfig), EmptyConfig.Length));
            w.WriteEndObject();
            w.WriteStartArray("layers");
            w.WriteStartObject();
            Descriptor(w, document);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartObject("subject");
            Descriptor(w, subject);
            w.WriteEndObject();
            w.WriteStartObject("annotations");
            w.WriteString(CreatedAnnotation, created);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        var bytes = buffer.ToArray();
        return new Manifest(bytes, ImageManifest, RegistryClient.Digest(bytes));
    }

    /// <summary>One entry of an image index: the digest it names and, for an inventory of ours, its kind and creation time.</summary>
    public sealed record IndexEntry(string? Digest, string? Inventory, string? Created);

    /// <summary>The entries of an image index's <c>manifests</c> list, in order; null when the bytes are not JSON or hold no such list.</summary>
    public static List<IndexEntry>? Entries(byte[] index)
    {
        try
        {
            using var doc = JsonDocument.Parse(index);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("manifests", out var list) || list.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var entries = new List<IndexEntry>();
            foreach (var m in list.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object)
                {
                    entries.Add(new IndexEntry(null, null, null));
                    continue;
                }

                var a = m.TryGetProperty("annotations", out var an) && an.ValueKind == JsonValueKind.Object ? an : (JsonElement?)null;
                entries.Add(new IndexEntry(String(m, "digest"), a is { } x ? String(x, InventoryAnnotation) : null, a is { } y ? String(y, CreatedAnnotation) : null));
            }

            return entries;
        }
        catch (JsonException)
        {
            return null;
        }

        static string? String(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    /// <summary>
    /// Whether <paramref name="index"/> lists <paramref name="artifact"/>, or an inventory of ours created at or after
    /// <paramref name="created"/> (a concurrent publish of the same digest that replaced ours: the digest keeps an inventory).
    /// </summary>
    public static bool ListsInventory(Manifest index, string artifact, string created) =>
        Entries(index.Bytes)?.Any(e => e.Digest == artifact || (e.Inventory is not null && e.Created is { } at && string.CompareOrdinal(at, created) >= 0)) == true;

    /// <summary>
    /// The fallback tag's index with <paramref name="referrer"/> in it: <paramref name="existing"/> (null: the tag has no
    /// index yet) with its other descriptors kept as they are. Something under the tag that is not an OCI image index is
    /// not overwritten: refused.
    /// </summary>
    public static Manifest AddToIndex(Manifest? existing, OciDescriptor referrer)
    {
        var kept = new List<JsonElement>();
        JsonDocument? parsed = null;
        try
        {
            if (existing is not null)
            {
                if (existing.MediaType != ImageIndex)
                {
                    throw new InventoryException($"the referrers tag holds a {DpkgStatus.Safe(existing.MediaType)}, not an OCI image index: left as it is");
                }

                try
                {
                    parsed = JsonDocument.Parse(existing.Bytes);
                }
                catch (JsonException)
                {
                    throw new InventoryException("the referrers tag holds an index that is not JSON: left as it is");
                }

                if (parsed.RootElement.ValueKind != JsonValueKind.Object || !parsed.RootElement.TryGetProperty("manifests", out var list) || list.ValueKind != JsonValueKind.Array)
                {
                    throw new InventoryException("the referrers tag holds an index without a manifests list: left as it is");
                }

                var ours = referrer.Annotations?.GetValueOrDefault(InventoryAnnotation);
                foreach (var m in list.EnumerateArray())
                {
                    var same = m.ValueKind == JsonValueKind.Object && m.TryGetProperty("digest", out var d) && d.ValueKind == JsonValueKind.String && d.GetString() == referrer.Digest;
                    var replaced = ours is not null && m.ValueKind == JsonValueKind.Object && m.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object
                        && a.TryGetProperty(InventoryAnnotation, out var kind) && kind.ValueKind == JsonValueKind.String && kind.GetString() == ours;
                    if (!same && !replaced)
                    {
                        kept.Add(m);
                    }
                }
            }

            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("schemaVersion", 2);
                w.WriteString("mediaType", ImageIndex);
                w.WriteStartArray("manifests");
                foreach (var m in kept)
                {
                    m.WriteTo(w);
                }

                w.WriteStartObject();
                Descriptor(w, referrer);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }

            var bytes = buffer.ToArray();
            return new Manifest(bytes, ImageIndex, RegistryClient.Digest(bytes));
        }
        finally
        {
            parsed?.Dispose();
        }
    }

    private static void Descriptor(Utf8JsonWriter w, OciDescriptor d)
    {
        w.WriteString("mediaType", d.MediaType);
        w.WriteString("digest", d.Digest);
        w.WriteNumber("size", d.Size);
        if (d.ArtifactType is { } t)
        {
            w.WriteString("artifactType", t);
        }

        if (d.Annotations is { Count: > 0 } a)
        {
            w.WriteStartObject("annotations");
            foreach (var (k, v) in a.OrderBy(x => x.Key, StringComparer.Ordinal))
            {
                w.WriteString(k, v);
            }

            w.WriteEndObject();
        }
    }
}
