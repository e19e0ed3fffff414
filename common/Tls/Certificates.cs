using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Toolforge.Agents.Common.Files;

namespace Toolforge.Agents.Common.Tls;

/// <summary>
/// Loading PEM certificates and CA bundles (puppet's layout: certs/&lt;fqdn&gt;.pem, private_keys/&lt;fqdn&gt;.pem,
/// certs/ca.pem) and validating a peer against the configured CA bundle instead of the system store.
/// </summary>
public static class Certificates
{
    /// <summary>A certificate with its private key, usable by SslStream on Linux and Windows.</summary>
    public static X509Certificate2 LoadWithKey(string certificatePath, string keyPath)
    {
        var certificatePem = ReadPem("certificate", certificatePath); // a file that cannot be read is named (TlsFileException)
        var keyPem = ReadPem("key", keyPath);
        try
        {
            return FromPemWithKey(certificatePem, keyPem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new CryptographicException($"cannot load certificate {certificatePath} with key {keyPath}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// A certificate and its private key from their PEM files, checked as a pair, with the file at fault named when it
    /// fails (<see cref="TlsFileException"/>): a certificate path that holds a key, a truncated certificate, a key that is
    /// not this certificate's (a renewal half-written). What the daemons check at start and the shipper at every
    /// connection attempt.
    /// </summary>
    public static X509Certificate2 LoadPair(string certificatePath, string keyPath)
    {
        var certificatePem = ReadPem("certificate", certificatePath);
        if (!certificatePem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            throw new TlsFileException("certificate", certificatePath, "holds no PEM certificate"
                + (certificatePem.Contains("PRIVATE KEY-----", StringComparison.Ordinal) ? " (it holds a private key: is it the key's path?)" : string.Empty));
        }

        try
        {
            using var alone = X509Certificate2.CreateFromPem(certificatePem);
        }
        catch (CryptographicException ex)
        {
            throw new TlsFileException("certificate", certificatePath, $"holds no usable PEM certificate ({ex.Message})", ex);
        }

        var keyPem = ReadPem("key", keyPath);
        if (!keyPem.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw new TlsFileException("key", keyPath, "holds no PEM private key");
        }

        try
        {
            return FromPemWithKey(certificatePem, keyPem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new TlsFileException("key", keyPath, $"is not the private key of {certificatePath} ({ex.Message})", ex);
        }
    }

    private static string ReadPem(string what, string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (FileProblem.Describe(ex, path) is { } problem)
        {
            throw new TlsFileException(what, path, problem, ex);
        }
    }

    /// <summary>A certificate and its key given as PEM text (a kubeconfig's -data fields), usable by SslStream.</summary>
    public static X509Certificate2 FromPemWithKey(string certificatePem, string keyPem)
    {
        using var pem = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        // Round trip through PKCS#12 so the key is not ephemeral (SChannel on Windows refuses those).
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), password: null);
    }

    public static X509Certificate2Collection LoadBundle(string path)
    {
        return BundleFromPem(ReadPem("CA bundle", path), $"CA bundle {path}");
    }

    /// <summary>The certificates of PEM text; <paramref name="what"/> names it in the error when it holds none.</summary>
    public static X509Certificate2Collection BundleFromPem(string pem, string what)
    {
        var bundle = new X509Certificate2Collection();
        try
        {
            bundle.ImportFromPem(pem);
        }
        catch (CryptographicException ex)
        {
            throw new CryptographicException($"cannot load {what}: {ex.Message}", ex);
        }

        return bundle.Count > 0 ? bundle : throw new CryptographicException($"{what} holds no certificate");
    }

    /// <summary>
    /// Validates <paramref name="certificate"/> against the bundle: self-signed certificates in it are the trust
    /// anchors, the others are intermediates. Returns null when valid, else why not.
    /// </summary>
    public static string? ValidateChain(X509Certificate2 certificate, X509Certificate2Collection bundle, X509Certificate2Collection? presentedExtra = null)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // revocation: the coordinator's deny-list
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        foreach (var ca in bundle)
        {
            if (ca.SubjectName.RawData.AsSpan().SequenceEqual(ca.IssuerName.RawData))
            {
                chain.ChainPolicy.CustomTrustStore.Add(ca);
            }
            else
            {
                chain.ChainPolicy.ExtraStore.Add(ca);
            }
        }

        if (presentedExtra is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(presentedExtra);
        }

        if (chain.Build(certificate))
        {
            return null;
        }

        var reasons = chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct();
        return $"certificate \"{certificate.Subject}\" is not valid for the configured CA: {string.Join("; ", reasons)}";
    }

    /// <summary>The identity a certificate stands for (<see cref="CertificateIdentity"/>); throws when it is ambiguous.</summary>
    public static string Identity(X509Certificate2 certificate)
    {
        var identity = CertificateIdentity.Of(certificate);
        return identity.Name ?? throw new CryptographicException($"certificate \"{certificate.Subject}\": {identity.Problem}");
    }

    /// <summary>
    /// A client-side server-certificate check: the chain must lead to the configured CA and the name must match.
    /// </summary>
    public static RemoteCertificateValidationCallback ServerValidator(X509Certificate2Collection bundle) =>
        (_, certificate, chain, errors) =>
        {
            if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0
                || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
            {
                return false;
            }

            using var cert = new X509Certificate2(certificate);
            var extra = new X509Certificate2Collection();
            if (chain is not null)
            {
                foreach (var element in chain.ChainElements)
                {
                    extra.Add(element.Certificate);
                }
            }

            return ValidateChain(cert, bundle, extra) is null && CertificateIdentity.UsageProblem(cert, CertificateIdentity.ServerAuthOid) is null;
        };
}

/// <summary>One TLS file that cannot be used: which one (<see cref="What"/>: "certificate", "key"), where, and why.</summary>
public sealed class TlsFileException(string what, string path, string reason, Exception? inner = null)
    : CryptographicException($"{what} {path} {reason}", inner)
{
    public string What { get; } = what;

    public string Path { get; } = path;

    public string Reason { get; } = reason;
}
