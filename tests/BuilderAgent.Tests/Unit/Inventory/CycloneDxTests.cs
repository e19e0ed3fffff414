using System.Text;
using System.Text.Json;
using Toolforge.Agents.BuilderAgent.Inventory;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed class CycloneDxTests
{
    private static readonly BomSubject Subject = new("127.0.0.1:5000/toolforge-python311-sssd-base", "sha256:" + new string('a', 64));

    [Fact]
    public void Write_PackagesAsLibraries_WithDebPurls_AndTheImageAsMetadataComponent()
    {
        IReadOnlyList<DebPackage> packages =
        [
            new("bsdutils", "1:2.38.1-5+deb12u3", "amd64", "installed"),
            new("libc6", "2.36-9+deb12u10", "amd64", "installed"),
            new("libc6", "2.36-9+deb12u10", "i386", "installed"),
            new("old-thing", "1.0-1", "all", "config-files"),
        ];
        var bytes = CycloneDx.Write(Subject, packages, new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero), Guid.Parse("3e671687-395b-41f5-a30f-a58921a69b79"), "1.2.3");

        Assert.Empty(CycloneDxSchemaRules.Violations(bytes));
        using var doc = JsonDocument.Parse(bytes);
        var root = doc.RootElement;
        Assert.Equal("CycloneDX", root.GetProperty("bomFormat").GetString());
        Assert.Equal("1.5", root.GetProperty("specVersion").GetString());
        Assert.Equal("urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", root.GetProperty("serialNumber").GetString());
        Assert.Equal("2026-12-06T12:00:00Z", root.GetProperty("metadata").GetProperty("timestamp").GetString());
        var image = root.GetProperty("metadata").GetProperty("component");
        Assert.Equal("container", image.GetProperty("type").GetString());
        Assert.Equal(Subject.Repository, image.GetProperty("name").GetString());
        Assert.Equal(Subject.Digest, image.GetProperty("version").GetString());
        Assert.Equal($"pkg:oci/toolforge-python311-sssd-base@sha256%3A{new string('a', 64)}?repository_url=127.0.0.1:5000/toolforge-python311-sssd-base", image.GetProperty("purl").GetString());

        var components = root.GetProperty("components").EnumerateArray().ToList();
        Assert.Equal(4, components.Count);
        Assert.All(components, c => Assert.Equal("library", c.GetProperty("type").GetString()));
        Assert.Equal(
            ["pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64",
             "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=i386", "pkg:deb/debian/old-thing@1.0-1?arch=all"],
            components.Select(c => c.GetProperty("purl").GetString()));
        Assert.Equal("1:2.38.1-5+deb12u3", components[0].GetProperty("version").GetString());
        Assert.False(components[0].TryGetProperty("properties", out _));
        var state = components[3].GetProperty("properties")[0];
        Assert.Equal(CycloneDx.StateProperty, state.GetProperty("name").GetString());
        Assert.Equal("config-files", state.GetProperty("value").GetString());
    }

    [Fact]
    public void Write_NoPackages_IsAValidDocumentWithAnEmptyComponentList()
    {
        var bytes = CycloneDx.Write(Subject, [], DateTimeOffset.UnixEpoch, Guid.NewGuid(), "0");
        Assert.Empty(CycloneDxSchemaRules.Violations(bytes));
        Assert.Equal(0, JsonDocument.Parse(bytes).RootElement.GetProperty("components").GetArrayLength());
    }

    [Fact]
    public void SchemaRules_CatchWhatTheSchemaForbids()
    {
        // The checker itself (CycloneDX's own schema, JsonSchema.Net): a document breaking each rule is caught, so an empty list above means something.
        var bad = """
            {"bomFormat":"cyclonedx","specVersion":1.5,"serialNumber":"urn:uuid:XYZ","version":0,"extra":1,
             "metadata":{"timestamp":"yesterday","component":{"type":"image","name":"x","bom-ref":"a"}},
             "components":[{"type":"library","bom-ref":"a"},{"type":"library","name":"y","purl":1,"properties":[{"name":"n","value":2}]}]}
            """;
        var errors = CycloneDxSchemaRules.Violations(Encoding.UTF8.GetBytes(bad));
        foreach (var expected in new[] { "/bomFormat: enum", "/specVersion: type", "/serialNumber: pattern", "/version: minimum", "/extra: ",
            "/metadata/timestamp: format", "/metadata/component/type: enum", "/components/0: required", "/components/0/bom-ref: a is not unique",
            "/components/1/purl: type", "/components/1/properties/0/value: type" })
        {
            Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
        }
    }
}
