using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Self-signed certificates shaped exactly as a unit test needs them (any CN or none, any DNS SANs or no SAN
/// extension at all, a chosen serial, a chosen extended key usage or none), made in memory: nothing is written.
/// </summary>
public static class TestCertificates
{
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    /// <param name="commonName">The CN; null or empty for a subject without one.</param>
    /// <param name="dnsNames">The DNS SANs; null for no SAN extension.</param>
    /// <param name="serial">The serial number's bytes (big-endian, as written); a random positive one when null.</param>
    /// <param name="usages">The extended key usage OIDs; null for no EKU extension.</param>
    public static X509Certificate2 Make(string? commonName, IEnumerable<string>? dnsNames = null, byte[]? serial = null, IEnumerable<string>? usages = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = string.IsNullOrEmpty(commonName) ? new X500DistinguishedName("O=toolforge-tests") : new X500DistinguishedName($"CN={commonName}");
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        if (dnsNames is not null)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var dns in dnsNames)
            {
                san.AddDnsName(dns);
            }

            request.CertificateExtensions.Add(san.Build());
        }

        if (usages is not null)
        {
            var oids = new OidCollection();
            foreach (var usage in usages)
            {
                oids.Add(new Oid(usage));
            }

            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        }

        if (serial is null)
        {
            serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7f;
        }

        var now = DateTimeOffset.UtcNow;
        return request.Create(subject, X509SignatureGenerator.CreateForECDsa(key), now.AddMinutes(-5), now.AddDays(1), serial);
    }
}
