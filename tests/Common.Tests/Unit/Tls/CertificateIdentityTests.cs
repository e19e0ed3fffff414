using System.Security.Cryptography;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// The one rule for who a certificate stands for: the CN when a DNS SAN equals it, else the single DNS SAN, else (no
/// DNS SAN) the CN; several DNS SANs none of which is the CN stand for no one. Names lower-case.
/// </summary>
public sealed class CertificateIdentityTests
{
    [Fact]
    public void Of_ACnThatIsOneOfSeveralSans_IsTheIdentity_ComparedLowerCase()
    {
        using var cert = TestCertificates.Make("Worker-1.Example", ["alias.example", "WORKER-1.example"]);
        var id = CertificateIdentity.Of(cert);
        Assert.Equal(("worker-1.example", (string?)null), (id.Name, id.Problem));
        Assert.Equal(["alias.example", "worker-1.example"], id.Names);
    }

    [Fact]
    public void Of_ASingleSan_IsTheIdentity_WhateverTheCnSays()
    {
        using var cert = TestCertificates.Make("Puppet Client", ["worker-1.example"]);
        var id = CertificateIdentity.Of(cert);
        Assert.Equal("worker-1.example", id.Name);
        Assert.Equal(["worker-1.example", "puppet client"], id.Names);
    }

    [Fact]
    public void Of_TheSameSanTwice_IsStillOneName()
    {
        using var cert = TestCertificates.Make("other", ["worker-1.example", "Worker-1.example"]);
        Assert.Equal("worker-1.example", CertificateIdentity.Of(cert).Name);
    }

    [Fact]
    public void Of_NoSanExtension_IsTheCn()
    {
        using var cert = TestCertificates.Make("Worker-1.Example");
        var id = CertificateIdentity.Of(cert);
        Assert.Equal(("worker-1.example", (string?)null), (id.Name, id.Problem));
    }

    [Fact]
    public void Of_TwoSansNeitherTheCn_IsNoOne_AndTheProblemNamesThem()
    {
        using var cert = TestCertificates.Make("worker-3.example", ["worker-1.example", "worker-2.example"]);
        var id = CertificateIdentity.Of(cert);
        Assert.Null(id.Name);
        Assert.Equal("ambiguous identity: 2 DNS names (worker-1.example, worker-2.example) and none equals the CN \"worker-3.example\"", id.Problem);
        Assert.Equal(["worker-1.example", "worker-2.example", "worker-3.example"], id.Names); // still all checked against the deny-list
    }

    [Fact]
    public void Of_NeitherSanNorCn_IsNoOne()
    {
        using var cert = TestCertificates.Make(commonName: null);
        var id = CertificateIdentity.Of(cert);
        Assert.Null(id.Name);
        Assert.Equal("the certificate has neither a DNS subject alternative name nor a CN", id.Problem);
        Assert.Empty(id.Names);
    }

    [Fact]
    public void UsageProblem_NoEkuExtension_OrOneListingTheUsage_IsFine_OneWithoutIt_IsNamed()
    {
        using var none = TestCertificates.Make("a.example", ["a.example"]);
        using var both = TestCertificates.Make("a.example", ["a.example"], usages: [TestCertificates.ServerAuth, TestCertificates.ClientAuth]);
        using var serverOnly = TestCertificates.Make("a.example", ["a.example"], usages: [TestCertificates.ServerAuth]);
        Assert.Null(CertificateIdentity.UsageProblem(none, CertificateIdentity.ClientAuthOid));
        Assert.Null(CertificateIdentity.UsageProblem(both, CertificateIdentity.ClientAuthOid));
        Assert.Equal("its extended key usage does not allow clientAuth", CertificateIdentity.UsageProblem(serverOnly, CertificateIdentity.ClientAuthOid));
        Assert.Null(CertificateIdentity.UsageProblem(serverOnly, CertificateIdentity.ServerAuthOid));
    }

    [Fact]
    public void Fingerprint_IsTheSha256OfTheDer_AllSixtyFourDigitsUpperCase()
    {
        using var cert = TestCertificates.Make("a.example");
        var fingerprint = CertificateIdentity.Fingerprint(cert);
        Assert.Equal(64, fingerprint.Length);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(cert.RawData)), fingerprint);
        Assert.Equal(fingerprint.ToUpperInvariant(), fingerprint);
    }
}
