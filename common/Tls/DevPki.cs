using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Toolforge.Agents.Common.Tls;

/// <summary>
/// A throwaway certificate authority for development, the demo and tests (`agentctl pki`, `./build.sh certs`).
/// Production uses the puppet CA and the node certificates puppet already placed on each host.
/// Files: ca.pem/ca.key, then NAME.pem/NAME.key for each certificate issued.
/// </summary>
public sealed class DevPki : IDisposable
{
    private readonly X509Certificate2 _ca;

    private DevPki(X509Certificate2 ca) => _ca = ca;

    public X509Certificate2 Ca => _ca;

    public static DevPki Create(string commonName = "toolforge-agents dev CA")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new DevPki(request.CreateSelfSigned(now.AddDays(-1), now.AddYears(5)));
    }

    public static DevPki Load(string directory) =>
        new(Certificates.LoadWithKey(Path.Combine(directory, "ca.pem"), Path.Combine(directory, "ca.key")));

    /// <summary>
    /// Issues a certificate whose DNS SAN (and CN) is <paramref name="name"/>; server certificates get 127.0.0.1 and
    /// localhost too. Tests shape odd certificates with the rest: another CN, SANs that leave the name out, no clientAuth.
    /// </summary>
    public X509Certificate2 Issue(string name, bool server = false, IEnumerable<string>? extraDnsNames = null, TimeSpan? lifetime = null,
        string? commonName = null, bool nameInSan = true, bool clientAuth = true)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName ?? name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        var usages = new OidCollection { new Oid("1.3.6.1.5.5.7.3.1") }; // serverAuth
        if (clientAuth)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.2")); // clientAuth, as puppet's certificates carry
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        var san = new SubjectAlternativeNameBuilder();
        if (nameInSan)
        {
            san.AddDnsName(name);
        }

        foreach (var dns in extraDnsNames ?? [])
        {
            san.AddDnsName(dns);
        }

        if (server)
        {
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var cert = request.Create(_ca, now.AddMinutes(-5), now.Add(lifetime ?? TimeSpan.FromDays(365)), serial);
        using var withKey = cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public void WriteCa(string directory)
    {
        CreatePrivateDirectory(directory);
        Write(_ca, Path.Combine(directory, "ca.pem"), Path.Combine(directory, "ca.key"));
    }

    public (string Cert, string Key) IssueTo(string directory, string name, bool server = false) =>
        WriteTo(directory, name, Issue(name, server));

    /// <summary>Writes <paramref name="cert"/> (and disposes it) as NAME.pem and NAME.key in <paramref name="directory"/>.</summary>
    public static (string Cert, string Key) WriteTo(string directory, string name, X509Certificate2 certificate)
    {
        using var cert = certificate;
        var paths = (Path.Combine(directory, name + ".pem"), Path.Combine(directory, name + ".key"));
        Write(cert, paths.Item1, paths.Item2);
        return paths;
    }

    public static void Write(X509Certificate2 cert, string certPath, string keyPath)
    {
        File.WriteAllText(certPath, cert.ExportCertificatePem() + "\n");
        using var key = cert.GetECDsaPrivateKey() ?? throw new CryptographicException("certificate has no ECDSA private key");
        WritePrivate(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    /// <summary>A directory for keys: created 0700 (an existing one keeps its mode).</summary>
    public static void CreatePrivateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Writes a secret so that it is 0600 from its first byte (a new file renamed over the old one, whatever its mode).</summary>
    public static void WritePrivate(string path, string text) =>
        Files.DurableFile.Write(path, text, UnixFileMode.UserRead | UnixFileMode.UserWrite);

    public void Dispose() => _ca.Dispose();
}
