using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// A revoked certificate is found by its serial (any case, colons, leading zeros), its whole SHA-256 fingerprint, or
/// any of its names; nothing else matches.
/// </summary>
public sealed class DenyListTests
{
    private static string? Match(DenyList list, System.Security.Cryptography.X509Certificates.X509Certificate2 cert) =>
        list.Match(cert, CertificateIdentity.Of(cert), CertificateIdentity.Fingerprint(cert));

    [Theory]
    [InlineData("0A1B2C")]
    [InlineData("a1b2c")]
    [InlineData("0a:1b:2c")]
    [InlineData("000A1B2C")]
    [InlineData("  0a1b2c  ")]
    public void Match_ASerial_WrittenAnyWay_IsFound(string entry)
    {
        using var cert = TestCertificates.Make("worker-1.example", ["worker-1.example"], serial: [0x0A, 0x1B, 0x2C]);
        Assert.Equal("serial 0A1B2C", Match(new DenyList([entry]), cert));
    }

    [Fact]
    public void Match_AnotherSerial_OrASerialThatOnlySharesItsDigits_IsNotFound()
    {
        using var cert = TestCertificates.Make("worker-1.example", ["worker-1.example"], serial: [0x0A, 0x1B, 0x2C]);
        Assert.Null(Match(new DenyList(["A1B2D", "A1B2C0", "1B2C"]), cert));
    }

    [Fact]
    public void Match_TheFingerprint_AnyCaseWithColons_IsFound_ButNeverTrimmed()
    {
        using var cert = TestCertificates.Make("worker-1.example", ["worker-1.example"], serial: [0x01]);
        var fingerprint = CertificateIdentity.Fingerprint(cert);
        var withColons = string.Join(':', fingerprint.Chunk(2).Select(c => new string(c))).ToLowerInvariant();
        Assert.Equal($"fingerprint {fingerprint}", Match(new DenyList([withColons]), cert));

        // 63 digits are no fingerprint; as a serial they match nothing either, even when the fingerprint starts with 0.
        Assert.Null(Match(new DenyList([fingerprint[1..]]), cert));
        Assert.Null(Match(new DenyList([fingerprint[..^1]]), cert));
    }

    [Fact]
    public void Match_AnyNameTheCertificateCarries_IsFound_InAnyCase()
    {
        using var cert = TestCertificates.Make("Worker-1.Example", ["worker-1.example", "alias.example"]);
        Assert.Equal("name alias.example", Match(new DenyList(["ALIAS.example"]), cert));
        Assert.Equal("name worker-1.example", Match(new DenyList(["worker-1.example"]), cert));
        Assert.Null(Match(new DenyList(["worker-2.example", "example", "*.example"]), cert));
    }

    [Fact]
    public void Count_IsTheDistinctEntries_BlankOnesIgnored()
    {
        var list = new DenyList(["a.example", "A.example", " ", string.Empty, "0a1b"]);
        Assert.Equal(2, list.Count);
    }
}
