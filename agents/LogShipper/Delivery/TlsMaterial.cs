using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// A TLS destination's CA bundle and client certificate with its key, read from their files at every connection
/// attempt (puppet rewrites ca.pem; a renewal writes the certificate and the key one after the other). A file that
/// cannot be used is a <see cref="TlsMaterialException"/> naming that file: a delivery failure the shipper retries
/// with backoff, not the end of shipping.
/// </summary>
internal static class TlsMaterial
{
    public static (X509Certificate2Collection Bundle, X509Certificate2? Client) Load(Destination d, DestinationOptions o)
    {
        var bundle = new X509Certificate2Collection();
        var caPem = Read(d, "CA bundle", o.CaBundle);
        try
        {
            bundle.ImportFromPem(caPem);
        }
        catch (CryptographicException ex)
        {
            throw new TlsMaterialException(d, "CA bundle", o.CaBundle, ex.Message, ex);
        }

        if (bundle.Count == 0)
        {
            throw new TlsMaterialException(d, "CA bundle", o.CaBundle, "it holds no PEM certificate");
        }

        if (o.Certificate.Length == 0)
        {
            return (bundle, null);
        }

        var certificatePem = Read(d, "certificate", o.Certificate);
        try
        {
            using var alone = X509Certificate2.CreateFromPem(certificatePem);
        }
        catch (CryptographicException ex)
        {
            throw new TlsMaterialException(d, "certificate", o.Certificate, ex.Message, ex);
        }

        var keyPem = Read(d, "key", o.Key);
        try
        {
            return (bundle, Certificates.FromPemWithKey(certificatePem, keyPem));
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            // The certificate alone is fine: the key is unreadable, or not the one of this certificate (a renewal
            // half-written).
            throw new TlsMaterialException(d, "key", o.Key, $"{ex.Message} (the key of certificate {o.Certificate})", ex);
        }
    }

    private static string Read(Destination d, string what, string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TlsMaterialException(d, what, path, ex.Message, ex);
        }
    }
}
