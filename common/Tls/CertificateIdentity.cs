using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Toolforge.Agents.Common.Tls;

/// <summary>
/// Who a certificate stands for, by one rule written in the README: the CN when one of the DNS SANs equals it, else
/// the single DNS SAN, else (no DNS SAN at all) the CN. A certificate with several DNS SANs none of which is its CN is
/// ambiguous and stands for no one. Names are compared and returned lower-case.
/// </summary>
public sealed class CertificateIdentity
{
    /// <summary>The extended key usage a client certificate needs when it carries the extension at all.</summary>
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>The extended key usage a server certificate needs when it carries the extension at all.</summary>
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    private CertificateIdentity(string? name, IReadOnlyList<string> names, string? problem)
    {
        Name = name;
        Names = names;
        Problem = problem;
    }

    /// <summary>The identity; null when <see cref="Problem"/> says why there is none.</summary>
    public string? Name { get; }

    /// <summary>Every name the certificate carries (its DNS SANs and its CN), lower-case, for deny-list matching.</summary>
    public IReadOnlyList<string> Names { get; }

    public string? Problem { get; }

    public static CertificateIdentity Of(X509Certificate2 certificate)
    {
        var dns = new List<string>();
        foreach (var ext in certificate.Extensions)
        {
            if (ext is X509SubjectAlternativeNameExtension san)
            {
                dns.AddRange(san.EnumerateDnsNames().Select(n => n.ToLowerInvariant()));
            }
        }

        var cn = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false).ToLowerInvariant();
        var names = dns.Append(cn).Where(n => n.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        if (dns.Count == 0)
        {
            return cn.Length > 0
                ? new CertificateIdentity(cn, names, null)
                : new CertificateIdentity(null, names, "the certificate has neither a DNS subject alternative name nor a CN");
        }

        if (cn.Length > 0 && dns.Contains(cn, StringComparer.Ordinal))
        {
            return new CertificateIdentity(cn, names, null);
        }

        var distinct = dns.Distinct(StringComparer.Ordinal).ToList();
        return distinct.Count == 1
            ? new CertificateIdentity(distinct[0], names, null)
            : new CertificateIdentity(null, names,
                $"ambiguous identity: {distinct.Count} DNS names ({string.Join(", ", distinct.Take(5))}) and none equals the CN \"{cn}\"");
    }

    /// <summary>Null when the certificate may be used for <paramref name="oid"/> (no EKU extension, or one listing it), else why not.</summary>
    public static string? UsageProblem(X509Certificate2 certificate, string oid)
    {
        foreach (var ext in certificate.Extensions)
        {
            if (ext is X509EnhancedKeyUsageExtension eku)
            {
                foreach (var usage in eku.EnhancedKeyUsages)
                {
                    if (usage.Value == oid)
                    {
                        return null;
                    }
                }

                return $"its extended key usage does not allow {(oid == ClientAuthOid ? "clientAuth" : oid == ServerAuthOid ? "serverAuth" : oid)}";
            }
        }

        return null;
    }

    /// <summary>The SHA-256 fingerprint of the DER certificate, upper-case hex without separators (all 64 digits).</summary>
    public static string Fingerprint(X509Certificate2 certificate) => Convert.ToHexString(SHA256.HashData(certificate.RawData));
}
