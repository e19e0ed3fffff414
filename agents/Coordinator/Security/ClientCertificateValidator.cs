using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Decides, during the TLS handshake, whether a client certificate may connect: it must chain to the configured CA
/// bundle and must not be on the deny-list (serial number, SHA-256 fingerprint or identity).
/// </summary>
public sealed partial class ClientCertificateValidator
{
    private static readonly Counter Rejected = Metrics.CreateCounter(
        "toolforge_coordinator_rejected_handshakes_total", "Client certificates refused during the TLS handshake.", "reason");

    private readonly X509Certificate2Collection _bundle;
    private readonly HashSet<string> _denied;
    private readonly ILogger<ClientCertificateValidator> _logger;

    public ClientCertificateValidator(IOptions<CoordinatorOptions> options, ILogger<ClientCertificateValidator> logger)
    {
        _bundle = Certificates.LoadBundle(options.Value.CaBundle);
        _denied = options.Value.DeniedCertificates
            .Select(Normalize)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        _logger = logger;
    }

    public bool Validate(X509Certificate2 certificate, X509Chain? presented)
    {
        var extra = new X509Certificate2Collection();
        if (presented is not null)
        {
            foreach (var e in presented.ChainElements)
            {
                extra.Add(e.Certificate);
            }
        }

        if (Certificates.ValidateChain(certificate, _bundle, extra) is { } reason)
        {
            Rejected.WithLabels("untrusted").Inc();
            Log.Untrusted(_logger, certificate.Subject, reason);
            return false;
        }

        var identity = Certificates.Identity(certificate);
        var fingerprint = Convert.ToHexString(SHA256.HashData(certificate.RawData));
        if (_denied.Contains(Normalize(certificate.SerialNumber)) || _denied.Contains(fingerprint) || _denied.Contains(identity))
        {
            Rejected.WithLabels("denied").Inc();
            Log.Denied(_logger, identity, certificate.SerialNumber);
            return false;
        }

        return true;
    }

    private static string Normalize(string s) => s.Replace(":", string.Empty, StringComparison.Ordinal).Trim().ToUpper(CultureInfo.InvariantCulture).TrimStart('0');

    private static partial class Log
    {
        [LoggerMessage(2001, LogLevel.Warning, "refused client certificate {Subject}: {Reason}")]
        public static partial void Untrusted(ILogger logger, string subject, string reason);

        [LoggerMessage(2002, LogLevel.Warning, "refused client certificate of {Identity} (serial {Serial}): on the deny-list")]
        public static partial void Denied(ILogger logger, string identity, string serial);
    }
}
