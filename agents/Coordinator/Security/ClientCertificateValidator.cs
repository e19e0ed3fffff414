using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Decides, during the TLS handshake, whether a client certificate may connect: it must chain to the configured CA
/// bundle, allow clientAuth when it carries an extended key usage, stand for one identity (not an ambiguous set of
/// names), and not be on the deny-list (serial, SHA-256 fingerprint or any of its names). The deny-list is read from
/// the current policy, so a reload takes effect for new connections at once (and for open ones at their next call).
/// </summary>
public sealed partial class ClientCertificateValidator
{
    private static readonly Counter Rejected = Metrics.CreateCounter(
        "toolforge_coordinator_rejected_handshakes_total", "Client certificates refused during the TLS handshake.", "reason");

    private readonly X509Certificate2Collection _bundle;
    private readonly PolicyProvider _policy;
    private readonly ILogger<ClientCertificateValidator> _logger;

    public ClientCertificateValidator(IOptions<CoordinatorOptions> options, PolicyProvider policy, ILogger<ClientCertificateValidator> logger)
    {
        _bundle = Certificates.LoadBundle(options.Value.CaBundle);
        _policy = policy;
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
            return Refuse("untrusted", certificate.Subject, reason);
        }

        if (CertificateIdentity.UsageProblem(certificate, CertificateIdentity.ClientAuthOid) is { } usage)
        {
            return Refuse("usage", certificate.Subject, usage);
        }

        var identity = CertificateIdentity.Of(certificate);
        if (identity.Name is null)
        {
            return Refuse("ambiguous", certificate.Subject, identity.Problem!);
        }

        if (_policy.Current.Denied.Match(certificate, identity, CertificateIdentity.Fingerprint(certificate)) is { } entry)
        {
            Rejected.WithLabels("denied").Inc();
            Log.Denied(_logger, identity.Name, certificate.SerialNumber, entry);
            return false;
        }

        return true;
    }

    private bool Refuse(string label, string subject, string reason)
    {
        Rejected.WithLabels(label).Inc();
        Log.Untrusted(_logger, subject, reason);
        return false;
    }

    private static partial class Log
    {
        [LoggerMessage(2001, LogLevel.Warning, "refused client certificate {Subject}: {Reason}")]
        public static partial void Untrusted(ILogger logger, string subject, string reason);

        [LoggerMessage(2002, LogLevel.Warning, "refused client certificate of {Identity} (serial {Serial}): on the deny-list ({Entry})")]
        public static partial void Denied(ILogger logger, string identity, string serial, string entry);
    }
}
