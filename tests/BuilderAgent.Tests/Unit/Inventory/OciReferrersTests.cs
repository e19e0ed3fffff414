using System.Text;
using System.Text.Json;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed class OciReferrersTests
{
    private static readonly string Hex = new('b', 64);
    private static readonly OciDescriptor Subject = new("application/vnd.docker.distribution.manifest.v2+json", "sha256:" + Hex, 528);

    [Fact]
    public void FallbackTag_IsTheAlgorithmDashTheHex_AndANonDigestIsRefused()
    {
        Assert.Equal("sha256-" + Hex, OciReferrers.FallbackTag("sha256:" + Hex));
        Assert.Equal("sha512-" + new string('c', 64), OciReferrers.FallbackTag("sha512:" + new string('c', 128))); // cut to 64
        Assert.Throws<InventoryException>(() => OciReferrers.FallbackTag("latest"));
        Assert.Throws<InventoryException>(() => OciReferrers.FallbackTag("sha256:../x"));
    }

    [Fact]
    public void ArtifactManifest_IsAnImageManifest_WithArtifactType_EmptyConfig_TheDocumentAsLayer_AndTheImageAsSubject()
    {
        var doc = new OciDescriptor(CycloneDx.MediaType, "sha256:" + new string('d', 64), 1234);
        var m = OciReferrers.ArtifactManifest(Subject, doc, "2026-12-06T12:00:00Z");
        Assert.Equal(OciReferrers.ImageManifest, m.MediaType);
        Assert.Equal(RegistryClient.Digest(m.Bytes), m.Digest);
        var root = JsonDocument.Parse(m.Bytes).RootElement;
        Assert.Equal(2, root.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(OciReferrers.ImageManifest, root.GetProperty("mediaType").GetString());
        Assert.Equal("application/vnd.cyclonedx+json", root.GetProperty("artifactType").GetString());
        Assert.Equal("application/vnd.oci.empty.v1+json", root.GetProperty("config").GetProperty("mediaType").GetString());
        Assert.Equal("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", root.GetProperty("config").GetProperty("digest").GetString()); // sha256("{}")
        Assert.Equal(2, root.GetProperty("config").GetProperty("size").GetInt32());
        var layer = Assert.Single(root.GetProperty("layers").EnumerateArray());
        Assert.Equal(doc.Digest, layer.GetProperty("digest").GetString());
        Assert.Equal(1234, layer.GetProperty("size").GetInt64());
        Assert.Equal(Subject.Digest, root.GetProperty("subject").GetProperty("digest").GetString());
        Assert.Equal(Subject.MediaType, root.GetProperty("subject").GetProperty("mediaType").GetString());
        Assert.Equal(528, root.GetProperty("subject").GetProperty("size").GetInt64());
    }

    [Fact]
    public void AddToIndex_NewTag_ListsTheReferrer_AnExistingIndexKeepsItsOthers_AndTheSameReferrerIsListedOnce()
    {
        var mine = new OciDescriptor(OciReferrers.ImageManifest, "sha256:" + new string('1', 64), 400, CycloneDx.MediaType,
            new Dictionary<string, string> { [OciReferrers.CreatedAnnotation] = "2026-12-06T12:00:00Z" });
        var first = OciReferrers.AddToIndex(null, mine);
        Assert.Equal(OciReferrers.ImageIndex, first.MediaType);
        var listed = JsonDocument.Parse(first.Bytes).RootElement.GetProperty("manifests").EnumerateArray().ToList();
        var only = Assert.Single(listed);
        Assert.Equal(CycloneDx.MediaType, only.GetProperty("artifactType").GetString());
        Assert.Equal("2026-12-06T12:00:00Z", only.GetProperty("annotations").GetProperty(OciReferrers.CreatedAnnotation).GetString());

        // Another tool's signature already listed: kept byte for byte; ours added; added again, still once.
        var other = """{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":10,"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json"}]}""";
        var existing = new Manifest(Encoding.UTF8.GetBytes(other), OciReferrers.ImageIndex, RegistryClient.Digest(Encoding.UTF8.GetBytes(other)));
        var twice = OciReferrers.AddToIndex(OciReferrers.AddToIndex(existing, mine), mine);
        var all = JsonDocument.Parse(twice.Bytes).RootElement.GetProperty("manifests").EnumerateArray().ToList();
        Assert.Equal(2, all.Count);
        Assert.Equal("application/vnd.dev.cosign.artifact.sig.v1+json", all[0].GetProperty("artifactType").GetString());
        Assert.Equal(mine.Digest, all[1].GetProperty("digest").GetString());

        // A later inventory of ours (another document: a new serial and time) replaces our earlier entry, not beside it.
        var earlier = mine with { Annotations = new Dictionary<string, string> { [OciReferrers.InventoryAnnotation] = "dpkg" } };
        var later = earlier with { Digest = "sha256:" + new string('3', 64) };
        var replaced = JsonDocument.Parse(OciReferrers.AddToIndex(OciReferrers.AddToIndex(existing, earlier), later).Bytes).RootElement.GetProperty("manifests").EnumerateArray().ToList();
        Assert.Equal(["sha256:" + new string('2', 64), later.Digest], replaced.Select(m => m.GetProperty("digest").GetString()));
    }

    [Fact]
    public void AddToIndex_TheTagHoldsSomethingElse_IsLeftAsItIs()
    {
        var image = new Manifest("{}"u8.ToArray(), "application/vnd.docker.distribution.manifest.v2+json", "sha256:" + Hex);
        var ex = Assert.Throws<InventoryException>(() => OciReferrers.AddToIndex(image, Subject));
        Assert.Contains("not an OCI image index", ex.Message, StringComparison.Ordinal);
        var noList = new Manifest("{\"schemaVersion\":2}"u8.ToArray(), OciReferrers.ImageIndex, "sha256:" + Hex);
        Assert.Contains("without a manifests list", Assert.Throws<InventoryException>(() => OciReferrers.AddToIndex(noList, Subject)).Message, StringComparison.Ordinal);
    }
}
