using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Revoked client certificates. An entry matches a certificate's serial number (hex, any case, colons allowed, leading
/// zeros ignored), its SHA-256 fingerprint (64 hex digits, any case, colons allowed; compared whole, never trimmed)
/// or any of its names (every DNS SAN and the CN). An entry that reads as hex is tried as a serial too, so a serial
/// written either way is found.
/// </summary>
public sealed class DenyList
{
    private readonly HashSet<string> _serials = new(StringComparer.Ordinal);
    private readonly HashSet<string> _fingerprints = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public DenyList(IEnumerable<string> entries)
    {
        foreach (var raw in entries)
        {
            var entry = raw.Trim();
            if (entry.Length == 0)
            {
                continue;
            }

            _names.Add(entry.ToLowerInvariant());
            var hex = entry.Replace(":", string.Empty, StringComparison.Ordinal).ToUpperInvariant();
            if (hex.Length > 0 && hex.All(char.IsAsciiHexDigit))
            {
                if (hex.Length == 64)
                {
                    _fingerprints.Add(hex);
                }
                else
                {
                    _serials.Add(Serial(hex));
                }
            }
        }
    }

    public int Count => _names.Count;

    /// <summary>Which entry denies <paramref name="certificate"/> ("serial 0A1B", "fingerprint …", "name x"), or null.</summary>
    public string? Match(X509Certificate2 certificate, CertificateIdentity identity, string fingerprint)
    {
        var serial = Serial(certificate.SerialNumber.ToUpperInvariant());
        if (_serials.Contains(serial))
        {
            return $"serial {certificate.SerialNumber}";
        }

        if (_fingerprints.Contains(fingerprint))
        {
            return $"fingerprint {fingerprint}";
        }

        foreach (var name in identity.Names)
        {
            if (_names.Contains(name))
            {
                return $"name {name}";
            }
        }

        return null;
    }

    private static string Serial(string hex)
    {
        var trimmed = hex.TrimStart('0');
        return trimmed.Length == 0 ? "0" : trimmed.ToUpper(CultureInfo.InvariantCulture);
    }
}
