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
        X509Certificate2Collection bundle;
        try
        {
            bundle = Certificates.LoadBundle(o.CaBundle);
        }
        catch (CryptographicException ex)
        {
            throw new TlsMaterialException(d, "CA bundle", o.CaBundle, ex.Message, ex);
        }

        if (o.Certificate.Length == 0)
        {
            return (bundle, null);
        }

        try
        {
            return (bundle, Certificates.LoadPair(o.Certificate, o.Key));
        }
        catch (TlsFileException ex)
        {
            throw new TlsMaterialException(d, ex.What, ex.Path, ex.Reason, ex);
        }
    }
}
